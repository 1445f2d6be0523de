-- wrk script for the window benchmark (docs/performance.md): GET /v1/window
-- for users spread over WABILL_USERS pairs (default 10 000), at an instant
-- just after the traffic bench/dialog.lua sends (as an agent asks before
-- it replies). Token in WABILL_TOKEN. The requests are built once in init().
local token = os.getenv("WABILL_TOKEN") or "tok123"
local users = tonumber(os.getenv("WABILL_USERS") or "10000")
local requests = {}
local n = 0
init = function(args)
  for k = 1, users do
    local user = 5511900000000 + (k * 7919) % users
    local path = "/v1/window?waba=W1&phone=P1&user=" .. user .. "&at=1750090000"
    requests[k] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
  end
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
