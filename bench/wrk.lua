-- Rotates slugs and client addresses (X-Forwarded-For, honoured by realip).
-- BENCH_DIR holds slugs.txt (or BENCH_SLUGS) and ips.txt; BENCH_PREFIX is
-- the location.  BENCH_DELAY (milliseconds) paces each connection: one
-- request every BENCH_DELAY ms after the previous answer, so that
-- connections / BENCH_DELAY sets the rate (wrk2 is not in Debian).
local dir = os.getenv("BENCH_DIR")
local prefix = os.getenv("BENCH_PREFIX") or "/go/"
local slugs, ips = {}, {}
local slugfile = os.getenv("BENCH_SLUGS") or "slugs.txt"
local pace = tonumber(os.getenv("BENCH_DELAY") or "")
for l in io.lines(dir .. "/" .. slugfile) do slugs[#slugs + 1] = l end
for l in io.lines(dir .. "/ips.txt") do ips[#ips + 1] = l end
local i = 0
request = function()
  i = i + 1
  local s = slugs[(i % #slugs) + 1]
  local ip = ips[(i * 7 % #ips) + 1]
  return wrk.format("GET", prefix .. s .. "?utm_content=x", {
    ["X-Forwarded-For"] = ip,
    ["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    ["Referer"] = "https://www.tiktok.com/@anna"})
end
if pace then
  delay = function() return pace end
end
