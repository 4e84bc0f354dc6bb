-- balancer: idle hosts pull work from a busy one (receiver-initiated).
--
-- Started on the busy host with a number of jobs, the agent becomes the
-- pool, and clones itself onto every other host as a worker (a clone knows
-- itself by its new id). The pool never pushes work: each worker, when it
-- is idle, asks for a job ({want = ID}), computes it, and sends back the
-- result ({done = JOB, result = R, host = H, from = ID}); it asks again
-- until the pool says there is no more ({stop = true}). A host that is
-- faster asks more often and so takes more of the work. The pool logs who
-- did what and the total at the end.
--
-- A job is "count the primes below n", a pure computation (preempted by the
-- daemon's instruction-count hook like any long loop).
--
-- Arguments: {jobs = 12, size = 20000, linger = seconds}

local function primes_below(n)
  local count = 0
  for i = 2, n - 1 do
    local p = true
    for d = 2, math.floor(math.sqrt(i)) do
      if i % d == 0 then p = false; break end
    end
    if p then count = count + 1 end
  end
  return count
end

-- An id says nothing of where its agent is, so messages between hosts
-- name the host to look at first (agent.send's hint): a worker knows the
-- pool's host (it was cloned from there), and every message says where
-- its sender is.
local function worker(pool, pool_host)
  local me = agent.id()
  local done = 0
  agent.log(("worker %s on %s pulls from %s"):format(me, agent.host(), pool))
  while true do
    local ok, err = agent.send(pool, { want = me, host = agent.host() }, pool_host)
    if not ok then agent.log("pool unreachable: " .. tostring(err)); return done end
    local msg = agent.recv(60)
    if msg == nil or msg.stop then break end
    if msg.job then
      local r = primes_below(msg.n)
      done = done + 1
      agent.send(pool, { done = msg.job, result = r, host = agent.host(), from = me }, pool_host)
    end
  end
  agent.log(("worker %s on %s did %d jobs"):format(me, agent.host(), done))
  return done
end

local function pool(njobs, size, nworkers)
  local next_job, finished, by_host, total = 1, 0, {}, 0
  agent.log(("pool on %s: %d jobs for %d workers"):format(agent.host(), njobs, nworkers))
  local stopped = 0
  while finished < njobs or stopped < nworkers do
    local msg = agent.recv(120)
    if msg == nil then agent.log("pool: no word from workers for 120 s"); break end
    if msg.want then
      if next_job <= njobs then
        agent.send(msg.want, { job = next_job, n = size + next_job }, msg.host)
        next_job = next_job + 1
      else
        agent.send(msg.want, { stop = true }, msg.host)
        stopped = stopped + 1
      end
    elseif msg.done then
      finished = finished + 1
      total = total + msg.result
      by_host[msg.host] = (by_host[msg.host] or 0) + 1
      agent.log(("job %d done on %s: %d primes"):format(msg.done, msg.host, msg.result))
    end
  end
  local parts = {}
  for h, n in pairs(by_host) do parts[#parts + 1] = h .. "=" .. n end
  table.sort(parts)
  agent.log(("pool: %d/%d jobs done, by host: %s, total=%d"):format(
    finished, njobs, table.concat(parts, " "), total))
  return total
end

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  local njobs = tonumber(args.jobs) or 12
  local size = tonumber(args.size) or 20000
  local home_id, home_host = agent.id(), agent.host()
  local nworkers = 0

  for _, h in ipairs(agent.hosts()) do
    if h ~= agent.host() then
      local cid, err = agent.clone(h)
      if agent.id() ~= home_id then
        return worker(home_id, home_host) -- the clone, on an idle host
      end
      if cid then nworkers = nworkers + 1
      else agent.log(("cannot place a worker on %s: %s"):format(h, tostring(err))) end
    end
  end
  if nworkers == 0 then
    agent.log("no other host: the pool does the work itself")
    local total = 0
    for j = 1, njobs do total = total + primes_below(size + j) end
    agent.log(("pool: %d jobs done, by host: %s=%d, total=%d"):format(njobs, agent.host(), njobs, total))
    return total
  end
  local total = pool(njobs, size, nworkers)
  agent.recv(tonumber(args.linger) or 5)
  return total
end
