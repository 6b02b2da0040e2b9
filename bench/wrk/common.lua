-- Shared by the wrk scripts: counts non-200 answers so a run of errors is never reported as speed.
non200 = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
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
   io.write(string.format("NON200 %d\n", bad))
   io.write(string.format("LATENCY_US p50=%d p99=%d p999=%d\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
