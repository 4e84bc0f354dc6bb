-- counter: counts across hops (strong mobility).
--
-- It hops round the cluster `rounds` times (default 2), counting one step
-- per host, and logs the count on every host. The count is an ordinary
-- local variable: it survives each agent.migrate() because the whole
-- suspended coroutine moves, so the log reads 1, 2, 3, ... across hosts.
-- At the end it goes home and logs the total and the path it took.
--
-- With {stay = true} it does not move by itself: it counts `rounds` steps
-- where it is, one every `pause` seconds, so that it can be moved from
-- outside (agentctl push/pull) in the middle of its loop and be seen to go
-- on counting on the other host.
--
-- Arguments (agentctl run --args): {rounds = N, hosts = {"h1", "h2"}, pause = S,
-- stay = true|false, linger = S}
-- Exported methods: count() -> n, path() -> {host, ...}

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  local rounds = tonumber(args.rounds) or 2
  local pause = tonumber(args.pause) or 0
  local hosts = args.hosts or agent.hosts()
  local count, path = 0, { agent.host() }

  agent.export({
    count = function() return count end,
    path = function() return path end,
  })

  if args.stay then
    for step = 1, rounds do
      count = count + 1
      if agent.host() ~= path[#path] then path[#path + 1] = agent.host() end
      agent.log(("count=%d step=%d host=%s"):format(count, step, agent.host()))
      agent.sleep(pause > 0 and pause or 0.5)
    end
    agent.log(("done: count=%d hops=%d path=%s"):format(count, #path - 1, table.concat(path, ">")))
    agent.recv(tonumber(args.linger) or 30)
    return count
  end

  for round = 1, rounds do
    for _, h in ipairs(hosts) do
      if h ~= agent.host() then
        local ok, err = agent.migrate(h)
        if not ok then
          -- The move failed: the agent is still here, state intact.
          agent.log(("could not move to %s: %s"):format(h, tostring(err)))
        else
          path[#path + 1] = agent.host()
        end
      end
      count = count + 1
      agent.log(("count=%d round=%d host=%s"):format(count, round, agent.host()))
      if pause > 0 then agent.sleep(pause) end
    end
  end

  if agent.host() ~= agent.home() then
    local ok, err = agent.migrate(agent.home())
    if ok then path[#path + 1] = agent.host() else agent.log("cannot go home: " .. tostring(err)) end
  end
  agent.log(("done: count=%d hops=%d path=%s"):format(count, #path - 1, table.concat(path, ">")))
  -- Stay reachable for `agentctl call ID count` for a while.
  agent.recv(tonumber(args.linger) or 30)
  return count
end
