-- cellar_get.lua - GET one cell, uniform random keys (raw value). The ceiling
-- server gets the same stream, so the client does the same work for both.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local prefix
function init(args)
   c.seed()
   prefix = "/v1/tables/" .. c.table .. "/rows/"
end
function request()
   local h, s = c.key(c.uniform())
   return wrk.format("GET", prefix .. h .. "/cells/" .. s)
end
