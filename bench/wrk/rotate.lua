-- POST a different event each request, from a file of one JSON event per line (unique tokens):
-- wrk ... -s rotate.lua URL -- EVENTS_FILE
dofile(os.getenv("WRK_COMMON"))
local events = {}
local i = 0

function init(args)
   for line in io.lines(args[1]) do
      events[#events + 1] = line
   end
end

function request()
   i = i + 1
   if i > #events then i = 1 end
   return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, events[i])
end
