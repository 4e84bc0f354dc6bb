-- replicas: clones itself to other hosts; every copy serves the same methods.
--
-- The original clones itself onto the next `copies - 1` hosts of
-- agent.hosts() (default: three copies in all). A clone continues from the
-- agent.clone() call on its new host under a new id, with the same state;
-- it knows it is a clone because agent.id() is no longer the id it had.
-- Every copy then exports the same service:
--   get()        -> the value
--   set(v)       -> true (this copy only: a client keeps copies in step
--                   by calling all of them, as agentctl call A,B,C does)
--   whoami()     -> {id=, host=}
--   members()    -> ids of all copies (on the original; a clone knows the
--                   ids made before it)
-- The original logs "replicas: ID1,ID2,ID3", the line a client needs.
--
-- Arguments: {copies = 3, value = 42, linger = seconds}

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  local copies = tonumber(args.copies) or 3
  local value = args.value
  if value == nil then value = 42 end
  local original = agent.id()
  local members = { original }

  for _, h in ipairs(agent.hosts()) do
    if #members >= copies then break end
    if h ~= agent.host() then
      local cid, err = agent.clone(h)
      if agent.id() ~= original then
        -- This is the clone, running on h. Stop cloning.
        break
      end
      if cid then
        members[#members + 1] = cid
      else
        agent.log(("cannot clone to %s: %s"):format(h, tostring(err)))
      end
    end
  end

  local role = agent.id() == original and "original" or "clone"
  agent.export({
    get = function() return value end,
    set = function(v) value = v; return true end,
    whoami = function() return { id = agent.id(), host = agent.host(), role = role } end,
    members = function() return members end,
  })
  agent.log(("%s %s serving on %s, value=%s"):format(role, agent.id(), agent.host(), tostring(value)))
  if role == "original" then
    agent.log("replicas: " .. table.concat(members, ","))
  end
  -- Serve until told to stop or idle for `linger` seconds.
  local linger = tonumber(args.linger) or 600
  while true do
    local msg = agent.recv(linger)
    if msg == nil or msg == "stop" then break end
  end
  agent.log(("%s %s on %s stops"):format(role, agent.id(), agent.host()))
end
