-- etcd_range.lua - etcd v3 JSON gateway: linearizable range of one key, uniform random keys.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local headers = {["Content-Type"] = "application/json"}
function init(args)
   c.seed()
end
function request()
   local h, s = c.key(c.uniform())
   return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. c.base64(h .. "/" .. s) .. '"}')
end
