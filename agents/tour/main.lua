-- tour: a round trip over the whole cluster (strong mobility).
--
-- Itinerary: agent.hosts() in order, starting where it was started, then
-- home. On every host it reads the binding "probe" (by type, kind file):
-- the migration policy re-binds it (RB) to the file resource of the host it
-- landed on (a rebind prefers the identifier it had, "site"), so each read
-- gives that host's own value (scripts/cluster gives host N a file "site"
-- holding N * 10). The handle's info() says
-- which action the policy chose for the binding at that hop; the agent logs
-- it, so `agentctl logs` shows the itinerary, the action per hop and the
-- values, and at home the combined result.
--
-- Arguments: {hosts = {...}} to visit other hosts than agent.hosts().
-- Exported methods: result() -> {itinerary=, visits={{host,value,action,mode}...}, sum=}

local function read_probe(probe)
  if probe == nil then return nil, "no probe binding" end
  local v, err = probe:read()
  if v == nil then return nil, err end
  return tonumber(v) or v
end

local function describe(probe)
  if probe == nil then return "-", "-" end
  local info = probe:info()
  return tostring(info.action or "none"), tostring(info.mode or "?")
end

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  local hosts = args.hosts or agent.hosts()
  local probe, perr = agent.resource("probe")
  local visits, itinerary = {}, { agent.host() }
  local result = nil

  if probe == nil then agent.log("no probe on this host: " .. tostring(perr)) end
  agent.export({ result = function() return result end })
  agent.log(("tour %s starts on %s over %d hosts"):format(agent.id(), agent.host(), #hosts))

  for hop, h in ipairs(hosts) do
    if h ~= agent.host() then
      local ok, err = agent.migrate(h)
      if not ok then
        agent.log(("hop %d: cannot go to %s: %s"):format(hop, h, tostring(err)))
        goto continue
      end
      itinerary[#itinerary + 1] = agent.host()
    end
    do
      local value, rerr = read_probe(probe)
      local action, mode = describe(probe)
      visits[#visits + 1] = { host = agent.host(), value = value, action = action, mode = mode }
      agent.log(("hop %d: host=%s binding=probe action=%s mode=%s value=%s%s"):format(
        hop, agent.host(), action, mode, tostring(value), rerr and (" (" .. tostring(rerr) .. ")") or ""))
    end
    ::continue::
  end

  if agent.host() ~= agent.home() then
    local ok, err = agent.migrate(agent.home())
    if ok then itinerary[#itinerary + 1] = agent.host()
    else agent.log("cannot go home: " .. tostring(err)) end
  end

  local sum, parts = 0, {}
  for _, v in ipairs(visits) do
    if type(v.value) == "number" then sum = sum + v.value end
    parts[#parts + 1] = ("%s=%s"):format(v.host, tostring(v.value))
  end
  result = { itinerary = itinerary, visits = visits, sum = sum }
  -- The log travels with the agent; still, say it all in one line at home.
  for i, v in ipairs(visits) do
    agent.log(("visit %d: host=%s binding=probe action=%s mode=%s value=%s"):format(
      i, v.host, v.action, v.mode, tostring(v.value)))
  end
  agent.log("itinerary: " .. table.concat(itinerary, " > "))
  agent.log(("result: %s sum=%s"):format(table.concat(parts, " "), tostring(sum)))
  -- Stay a while so that `agentctl call ID result` can fetch it.
  agent.recv(tonumber(args.linger) or 30)
  return sum
end
