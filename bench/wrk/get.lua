-- GET with fixed headers (forward-auth, /healthz): wrk ... -s get.lua URL -- "Name: value" ...
dofile(os.getenv("WRK_COMMON"))

function init(args)
   for _, h in ipairs(args) do
      local name, value = h:match("^([^:]+):%s*(.*)$")
      if name then wrk.headers[name] = value end
   end
end
