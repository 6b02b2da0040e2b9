-- GET /forward-auth with a different session cookie each request, from a file of one token per
-- line (unique tokens, so every request verifies a signature):
-- wrk ... -s rotate_cookie.lua URL -- TOKENS_FILE
dofile(os.getenv("WRK_COMMON"))
local tokens = {}
local i = 0

function init(args)
   for line in io.lines(args[1]) do
      tokens[#tokens + 1] = line
   end
end

function request()
   i = i + 1
   if i > #tokens then i = 1 end
   return wrk.format("GET", nil, {
      ["Cookie"] = "sAccessToken=" .. tokens[i],
      ["X-Forwarded-Method"] = "GET",
      ["X-Forwarded-Uri"] = "/items",
   })
end
