-- POST one event read from a file: wrk ... -s post.lua URL -- EVENT_FILE
dofile(os.getenv("WRK_COMMON"))

function init(args)
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end
