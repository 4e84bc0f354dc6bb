-- mover: a by-identifier file resource that travels with the agent.
--
-- The host where it starts declares a file resource "notes". The binding is
-- by identifier, with the actions MV then GR: on each hop the policy moves
-- the file to the target (MV), unless something forbids it (the file is
-- too large for the transfer limit, another agent is bound to it, the
-- target refuses imports...), and then falls back to a global reference
-- (GR): the file stays where it is and every operation goes back to it.
-- At each host the agent appends a line and logs the action chosen and
-- where the file lives now (info().home), so both outcomes can be seen.
--
-- Arguments: {hosts = {...}}. Exported methods: notes() -> file content.

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  local hosts = args.hosts or agent.hosts()
  local notes, err = agent.resource("notes")
  if notes == nil then
    agent.log("no notes resource: " .. tostring(err))
    return nil
  end
  agent.export({ notes = function() return (notes:read()) end })

  local actions = {}
  local function visit(hop)
    local info = notes:info()
    actions[#actions + 1] = ("%s:%s"):format(agent.host(), tostring(info.action or "none"))
    local ok, werr = notes:append(("hop %d: %s\n"):format(hop, agent.host()))
    agent.log(("hop %d: host=%s binding=notes action=%s mode=%s file-home=%s%s"):format(
      hop, agent.host(), tostring(info.action or "none"), tostring(info.mode),
      tostring(info.home), ok and "" or (" append failed: " .. tostring(werr))))
  end

  visit(0)
  for hop, h in ipairs(hosts) do
    if h ~= agent.host() then
      local ok, merr = agent.migrate(h)
      if ok then visit(hop) else agent.log(("cannot go to %s: %s"):format(h, tostring(merr))) end
    end
  end
  if agent.host() ~= agent.home() then
    local ok = agent.migrate(agent.home())
    if ok then visit(#hosts + 1) end
  end
  -- The log travels with the agent; still, sum the hops up in one line at home.
  agent.log("binding notes, hop by hop: " .. table.concat(actions, " "))
  local text = notes:read()
  agent.log(("notes now (%d bytes, kept on %s):"):format(#(text or ""), tostring(notes:info().home)))
  for line in (text or ""):gmatch("[^\n]+") do agent.log("  " .. line) end
  agent.recv(tonumber(args.linger) or 30)
  return text
end
