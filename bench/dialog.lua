-- wrk script for the webhook benchmark (docs/performance.md): On-Premises
-- bodies through the 360dialog route, each message with a fresh id so that
-- every event is new and must be made durable before the answer. Messages
-- per body in WABILL_EVENTS_PER_BODY (default 1), secret in WABILL_D360.
local secret = os.getenv("WABILL_D360") or "d360"
local per_body = tonumber(os.getenv("WABILL_EVENTS_PER_BODY") or "1")
local n = 0
local thread_id = 0
setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
request = function()
  local messages = {}
  for k = 1, per_body do
    n = n + 1
    local user = 5511900000000 + (n * 7919) % 10000
    messages[k] = string.format(
      '{"from":"%d","id":"wamid.wrk.%d.%d.%d","timestamp":"%d","type":"text","text":{"body":"hi"}}',
      user, tid or 0, os.time(), n, 1750000000 + n % 86400)
  end
  local body = '{"messages":[' .. table.concat(messages, ",") .. ']}'
  return wrk.format("POST", "/webhooks/360dialog/acme",
    { ["D360-Secret"] = secret, ["Content-Type"] = "application/json" }, body)
end
