-- Searches as people type them: each request asks for a query drawn from BENCH_SEARCH_WORDS
-- (comma-separated; a third of them two words), so results and their sizes vary.
-- Every URL also carries a unique, ignored `_=` parameter, so no request is answered from
-- the app's page cache: this measures the search itself, as for a query no one asked since
-- the last write. (A repeated popular query would be a cache hit, as fast as board_anon.)
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local bench = require("common")

local words = {}
local n = 0
local base_path = "/ideas"

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

bench.install(function(tid)
  bench.base_headers(wrk.headers)
  for w in string.gmatch(os.getenv("BENCH_SEARCH_WORDS") or "export", "[^,]+") do
    words[#words + 1] = w
  end
  n = tid * 1000000
end)

function request()
  n = n + 1
  local q = words[math.random(#words)]
  if #words > 1 and math.random(3) == 1 then
    q = q .. " " .. words[math.random(#words)]
  end
  return wrk.format("GET", base_path .. "?q=" .. urlencode(q) .. "&_=" .. n)
end
