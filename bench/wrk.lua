-- Rotates slugs and client addresses (X-Forwarded-For, honoured by realip).
-- BENCH_DIR holds slugs.txt (or BENCH_SLUGS) and ips.txt; BENCH_PREFIX is
-- the location.
local dir = os.getenv("BENCH_DIR")
local prefix = os.getenv("BENCH_PREFIX") or "/go/"
local slugs, ips = {}, {}
local slugfile = os.getenv("BENCH_SLUGS") or "slugs.txt"
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
