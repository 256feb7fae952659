-- cellar_mixed.lua - 50% GET / 50% PUT of one cell, zipfian keys (YCSB workload A).
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local prefix
local headers = {["Content-Type"] = "application/octet-stream"}
function init(args)
   c.seed()
   c.zipf_init()
   prefix = "/v1/tables/" .. c.table .. "/rows/"
end
function request()
   local h, s = c.key(c.zipf())
   local path = prefix .. h .. "/cells/" .. s
   if math.random() < 0.5 then
      return wrk.format("GET", path)
   end
   return wrk.format("PUT", path, headers, c.value)
end
