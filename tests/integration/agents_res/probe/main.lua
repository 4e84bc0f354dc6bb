-- probe: holds a handle to its manifest binding `r` in a local of a
-- suspended coroutine and runs the operations the test sends it, logging
-- "R<tag> <results>" so that the test can read each answer from the logs.
-- The handle is never fetched again after the start: what it does after a
-- hop is what the strong-mobility restore (and the daemon's rebind) made it.

local function show(v)
  if type(v) == 'table' then
    local t = {}
    for i = 1, #v do t[#t + 1] = tostring(v[i]) end
    return '{' .. table.concat(t, ',') .. '}'
  end
  return tostring(v)
end

function main()
  local h, err = agent.resource('r')
  agent.log('bound ' .. tostring(h ~= nil) .. ' ' .. tostring(err) .. ' on ' .. agent.host())
  while true do
    local m = agent.recv()
    if type(m) == 'table' and m.op then
      local tag = tostring(m.tag)
      if h == nil then
        agent.log('R' .. tag .. ' nohandle')
      elseif m.op == 'info' then
        local i = h:info()
        agent.log(string.format('R%s info action=%s id=%s home=%s mode=%s host=%s', tag,
          tostring(i.action), tostring(i.id), tostring(i.home), tostring(i.mode), agent.host()))
      elseif m.op:sub(1, 7) == 'nested_' then
        -- the op inside a nested coroutine (which cannot park)
        local op = m.op:sub(8)
        local ok, a, b, c = pcall(coroutine.wrap(function() return h[op](h, m.a, m.b) end))
        if ok then
          agent.log('R' .. tag .. ' ' .. show(a) .. ' ' .. show(b) .. ' ' .. show(c))
        else
          agent.log('R' .. tag .. ' raised ' .. tostring(a))
        end
      else
        local ok, a, b, c = pcall(function() return h[m.op](h, m.a, m.b) end)
        if ok then
          agent.log('R' .. tag .. ' ' .. show(a) .. ' ' .. show(b) .. ' ' .. show(c))
        else
          agent.log('R' .. tag .. ' raised ' .. tostring(a))
        end
      end
    end
  end
end
