-- Shared by the benchmark's wrk scripts: browser-like headers, a per-thread request cap,
-- status counts, and a done() that prints one JSON line for bench/run.py to read.
--
-- Settings come from the environment (set by bench/run.py):
--   BENCH_THREAD_CAP   stop a thread after this many responses (the run is also bounded by -d)
--   BENCH_COOKIES      file of "cookie<TAB>csrf-token<TAB>user-id" lines (signed-in scripts)
--   BENCH_IDEA_IDS     file of idea ids, one a line (vote.lua)
--   BENCH_ACCEPT_ENCODING  what the client accepts (default "gzip, br", like a browser)
local M = {}

M.user_agent = "ideaboard-bench/1 (wrk)"

function M.lines(path)
  local out = {}
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if line ~= "" then out[#out + 1] = line end
  end
  f:close()
  return out
end

function M.split_tabs(line)
  local out = {}
  for field in string.gmatch(line, "[^\t]+") do out[#out + 1] = field end
  return out
end

function M.base_headers(headers)
  headers = headers or {}
  headers["User-Agent"] = M.user_agent
  headers["Accept"] = headers["Accept"] or "text/html,application/xhtml+xml,*/*;q=0.8"
  headers["Accept-Language"] = "en"
  local enc = os.getenv("BENCH_ACCEPT_ENCODING")
  if enc == nil then enc = "gzip, br" end
  if enc ~= "" then headers["Accept-Encoding"] = enc end
  return headers
end

local threads = {}
local thread_count = 0

-- Installs setup/response/done as globals; `init_thread(tid)` runs in each thread.
function M.install(init_thread)
  function setup(thread)
    thread_count = thread_count + 1
    thread:set("tid", thread_count)
    threads[#threads + 1] = thread
  end

  function init(args)
    cap = tonumber(os.getenv("BENCH_THREAD_CAP") or "") or 100000
    count = 0
    codes = {}
    math.randomseed(os.time() * 100 + (tid or 0))
    if init_thread then init_thread(tid or 1) end
  end

  function response(status, headers, body)
    count = count + 1
    if status >= 400 then
      codes[status] = (codes[status] or 0) + 1
    end
    if count >= cap then
      wrk.thread:stop()
    end
  end

  function done(summary, latency, requests)
    local statuses = {}
    local responses = 0
    for _, t in ipairs(threads) do
      responses = responses + (t:get("count") or 0)
      local c = t:get("codes")
      if c then
        for k, v in pairs(c) do statuses[k] = (statuses[k] or 0) + v end
      end
    end
    local parts = {}
    for k, v in pairs(statuses) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
    local e = summary.errors
    io.write(string.format(
      'BENCH_RESULT {"requests":%d,"responses":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"status_errors":{%s},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
      '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, responses, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ","),
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
  end
end

return M
