-- webdis_set.lua - webdis (redis over HTTP): SET one key (value_bytes), uniform random keys.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
function init(args)
   c.seed()
end
function request()
   local h, s = c.key(c.uniform())
   return wrk.format("PUT", "/SET/" .. h .. ":" .. s, nil, c.value)
end
