-- A new token every request, from a file of one item per line (unique tokens, so every request
-- verifies a signature):
--   wrk ... -s rotate.lua URL -- EVENTS_FILE          POST one JSON event per line (/authorize)
--   wrk ... -s rotate.lua URL -- TOKENS_FILE cookie   GET with the token as the sAccessToken cookie
dofile(os.getenv("WRK_COMMON"))
local items = {}
local i = 0
local as_cookie = false

function init(args)
   for line in io.lines(args[1]) do
      items[#items + 1] = line
   end
   as_cookie = args[2] == "cookie"
end

function request()
   i = i + 1
   if i > #items then i = 1 end
   if as_cookie then
      return wrk.format("GET", nil, {
         ["Cookie"] = "sAccessToken=" .. items[i],
         ["X-Original-Method"] = "GET",
         ["X-Original-URI"] = "/items",
      })
   end
   return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, items[i])
end
