-- wrk script for the webhook benchmark (docs/performance.md): On-Premises
-- bodies through the 360dialog route, each message with a fresh id so that
-- every event is new and must be made durable before the answer. Messages
-- per body in WABILL_EVENTS_PER_BODY (default 1), users in WABILL_USERS
-- (default 10 000), secret in WABILL_D360.
local secret = os.getenv("WABILL_D360") or "d360"
local per_body = tonumber(os.getenv("WABILL_EVENTS_PER_BODY") or "1")
local users = tonumber(os.getenv("WABILL_USERS") or "10000")
local n = 0
local prefix = ""
local head = ""
setup = function(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
init = function(args)
  -- Ids unique across threads and runs: the thread's random tag and the
  -- start time, then a counter.
  prefix = '{"from":"'
  head = "POST /webhooks/360dialog/acme HTTP/1.1\r\n"
    .. "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n"
    .. "D360-Secret: " .. secret .. "\r\n"
    .. "Content-Type: application/json\r\n"
  tag = (tid or "0") .. "." .. os.time() .. "."
end
request = function()
  local messages = {}
  for k = 1, per_body do
    n = n + 1
    local user = 5511900000000 + (n * 7919) % users
    messages[k] = prefix .. user .. '","id":"wamid.wrk.' .. tag .. n
      .. '","timestamp":"' .. (1750000000 + n % 86400)
      .. '","type":"text","text":{"body":"hi"}}'
  end
  local body = '{"messages":[' .. table.concat(messages, ",") .. ']}'
  return head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end
