-- wrk script for the readers of bench/serve.sh (READERS=N): a client that
-- reads, in a closed loop, the month the at-rate webhooks are writing
-- (WABA W1, WABILL_MONTH, default 2025-06): its invoice, the first page of
-- its conversations, and one user's conversations (users as
-- bench/window.lua spreads them over WABILL_USERS, default 10 000). Each
-- read after a write makes the service settle what the writes changed, so
-- this is what can stall the writer. Token in WABILL_TOKEN.
local token = os.getenv("WABILL_TOKEN") or "tok123"
local month = os.getenv("WABILL_MONTH") or "2025-06"
local users = tonumber(os.getenv("WABILL_USERS") or "10000")
local requests = {}
local n = 0
init = function(args)
  local auth = { ["Authorization"] = "Bearer " .. token }
  local list = "/v1/conversations?waba=W1&month=" .. month
  for k = 1, 100 do
    local user = 5511900000000 + (k * 7919) % users
    requests[#requests + 1] = wrk.format("GET", "/v1/invoices/W1/" .. month, auth)
    requests[#requests + 1] = wrk.format("GET", list .. "&limit=100", auth)
    requests[#requests + 1] = wrk.format("GET", list .. "&phone=P1&user=" .. user, auth)
  end
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
