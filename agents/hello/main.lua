-- hello: greets from wherever it runs, then answers messages.
--
-- Weak mobility: `agentctl push ID --to h2 --weak` moves the code only, so
-- on h2 main() runs again from the top and greets a second time, from h2;
-- nothing it had computed on h1 is carried over (compare agents/counter).
--
-- Messages: any message is logged and answered to the sender when it names
-- itself ({from = id, text = ...}); the word "stop" ends the agent.
-- Exported method (when the host supports agent.export):
--   greet(name) -> "hello, NAME, from HOST"

local function greet(name)
  return ("hello, %s, from %s"):format(tostring(name or "world"), agent.host())
end

-- `agentctl run --args JSON` reaches the entry chunk as `...`; main gets
-- them too when the host passes them on.
local start_args = ...

function main(args)
  args = args or start_args or {}
  agent.log(("hello from %s: I am %s, my home is %s"):format(agent.host(), agent.id(), agent.home()))
  -- export may be unavailable on a host without the access-transparency
  -- layer: then the agent still runs, reachable by messages only.
  local ok, err = agent.export({ greet = greet })
  if not ok then
    agent.log("no exported methods here: " .. tostring(err))
  end
  local idle = tonumber(args.idle) or 3600
  while true do
    local msg = agent.recv(idle)
    if msg == nil then
      agent.log("idle for " .. idle .. " s; goodbye")
      return "idle"
    end
    if msg == "stop" or (type(msg) == "table" and msg.text == "stop") then
      agent.log("stopping on request")
      return "stopped"
    end
    local text = type(msg) == "table" and msg.text or msg
    agent.log(("got %s on %s"):format(tostring(text), agent.host()))
    if type(msg) == "table" and type(msg.from) == "string" then
      agent.send(msg.from, { from = agent.id(), text = greet(msg.from) })
    end
  end
end
