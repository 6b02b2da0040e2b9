-- wrk script: POST an API Gateway REST REQUEST event (read from a file) to the server.
--   wrk -t1 -c32 -d10s -s bench/seed/wrk-post.lua http://127.0.0.1:8091/ -- EVENT_FILE
-- Counts non-200 answers so a run that only gets 401/500s is noticed.
non200 = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s wrk-post.lua URL -- EVENT_FILE")
   end
   local f = assert(io.open(path, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non200") or 0)
   end
   io.write(string.format("non-200 responses: %d\n", bad))
   io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
