-- wrk script for the window benchmark (docs/performance.md): GET /v1/window
-- for users spread over 10 000 pairs. Token in WABILL_TOKEN.
local token = os.getenv("WABILL_TOKEN") or "tok123"
local n = 0
request = function()
  n = n + 1
  local user = 5511900000000 + (n * 7919) % 10000
  local path = "/v1/window?waba=W1&phone=P1&user=" .. user .. "&at=1750040000"
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
