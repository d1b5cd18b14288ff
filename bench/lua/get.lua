-- Plain GETs of the URL given to wrk, as a browser would send them; optional BENCH_COOKIE
-- ("name=value; ...") is sent with every request.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local bench = require("common")

bench.base_headers(wrk.headers)
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then wrk.headers["Cookie"] = cookie end
if os.getenv("BENCH_ACCEPT") then wrk.headers["Accept"] = os.getenv("BENCH_ACCEPT") end

bench.install()
