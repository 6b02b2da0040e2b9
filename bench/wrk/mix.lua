-- A mix of front doors and outcomes for the soak: wrk ... -s mix.lua URL -- FIXTURE_DIR DELAY_MS
-- Cycles through: /authorize cached (200), /forward-auth cached (200), /ext-authz cached (200),
-- /authorize no token (200), /authorize expired (401), /forward-auth with a new token (200;
-- unique tokens keep the cache churning). Counts every status; `DELAY_MS` paces each connection
-- (wrk's delay()) so the rate stays below saturation.
local threads = {}
counts = {}
local reqs = {}
local uniques = {}
local delay_ms = 0
local i = 0
local u = 0

local function read(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local dir = args[1]
   delay_ms = tonumber(args[2]) or 0
   local token = read(dir .. "/token.txt"):gsub("%s+$", "")
   local post = {["Content-Type"] = "application/json"}
   reqs = {
      wrk.format("POST", "/authorize", post, read(dir .. "/cached.json")),
      wrk.format("GET", "/forward-auth", {["Cookie"] = "sAccessToken=" .. token, ["X-Original-Method"] = "GET", ["X-Original-URI"] = "/items"}),
      wrk.format("GET", "/ext-authz/items", {["Cookie"] = "sAccessToken=" .. token}),
      wrk.format("POST", "/authorize", post, read(dir .. "/none.json")),
      wrk.format("POST", "/authorize", post, read(dir .. "/expired.json")),
   }
   for line in io.lines(dir .. "/unique_tokens.txt") do
      table.insert(uniques, line)
      if #uniques >= 20000 then break end
   end
end

function request()
   i = i + 1
   local k = i % 6
   if k == 0 then
      u = u % #uniques + 1
      return wrk.format("GET", "/forward-auth", {["Authorization"] = "Bearer " .. uniques[u], ["X-Original-Method"] = "GET", ["X-Original-URI"] = "/items"})
   end
   return reqs[k]
end

function delay()
   return delay_ms
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      for _, code in ipairs({200, 401, 403, 413, 500, 502, 503, 504}) do
         local c = t:get("counts")
         if c and c[code] then total[code] = (total[code] or 0) + c[code] end
      end
   end
   local parts = {}
   for code, n in pairs(total) do table.insert(parts, code .. "=" .. n) end
   io.write("STATUS " .. table.concat(parts, " ") .. "\n")
   io.write(string.format("ERRORS connect=%d read=%d write=%d timeout=%d status=%d\n",
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status))
   io.write(string.format("LATENCY_US p50=%d p99=%d p999=%d\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
