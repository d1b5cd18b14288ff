-- Signed-in GETs of the URL given to wrk, rotating through many members' session cookies
-- (BENCH_COOKIES): each request comes from the next member, so no one member's rows stay hot.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local bench = require("common")

local reqs = {}
local nreq = 0
local idx = 0

bench.install(function(tid)
  local headers = bench.base_headers({})
  for _, line in ipairs(bench.lines(os.getenv("BENCH_COOKIES"))) do
    local f = bench.split_tabs(line)
    headers["Cookie"] = "session=" .. f[1]
    reqs[#reqs + 1] = wrk.format("GET", wrk.path, headers)
  end
  nreq = #reqs
  -- Threads start at different members.
  idx = math.floor((tid - 1) * nreq / 2) % nreq
end)

function request()
  idx = idx % nreq + 1
  return reqs[idx]
end
