-- Vote toggles as htmx sends them: a random member (session cookie + X-CSRFToken header,
-- HX-Request: true) toggles their vote on a random idea from BENCH_IDEA_IDS, by POST to
-- /ideas/<id>/vote. Each toggle adds the member's vote or takes it back.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local bench = require("common")

local members = {}
local ideas = {}

bench.install(function(tid)
  for _, line in ipairs(bench.lines(os.getenv("BENCH_COOKIES"))) do
    local f = bench.split_tabs(line)
    members[#members + 1] = { cookie = "session=" .. f[1], csrf = f[2] }
  end
  for _, line in ipairs(bench.lines(os.getenv("BENCH_IDEA_IDS"))) do
    ideas[#ideas + 1] = tonumber(line)
  end
end)

function request()
  local m = members[math.random(#members)]
  local id = ideas[math.random(#ideas)]
  local headers = bench.base_headers({})
  headers["Accept"] = "*/*"
  headers["Cookie"] = m.cookie
  headers["X-CSRFToken"] = m.csrf
  headers["HX-Request"] = "true"
  headers["HX-Current-URL"] = "http://" .. wrk.host .. ":" .. tostring(wrk.port) .. "/ideas"
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  return wrk.format("POST", "/ideas/" .. id .. "/vote", headers, "")
end
