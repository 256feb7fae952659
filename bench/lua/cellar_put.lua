-- cellar_put.lua - PUT one cell (value_bytes), uniform random keys.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local prefix
local headers = {["Content-Type"] = "application/octet-stream"}
function init(args)
   c.seed()
   prefix = "/v1/tables/" .. c.table .. "/rows/"
end
function request()
   local h, s = c.key(c.uniform())
   return wrk.format("PUT", prefix .. h .. "/cells/" .. s, headers, c.value)
end
