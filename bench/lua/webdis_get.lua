-- webdis_get.lua - webdis (redis over HTTP): GET one key, uniform random keys.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
function init(args)
   c.seed()
end
function request()
   local h, s = c.key(c.uniform())
   return wrk.format("GET", "/GET/" .. h .. ":" .. s)
end
