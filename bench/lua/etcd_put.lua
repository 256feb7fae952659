-- etcd_put.lua - etcd v3 JSON gateway: put one key (value_bytes), uniform random keys.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local headers = {["Content-Type"] = "application/json"}
local value64
function init(args)
   c.seed()
   value64 = c.base64(c.value)
end
function request()
   local h, s = c.key(c.uniform())
   local body = '{"key":"' .. c.base64(h .. "/" .. s) .. '","value":"' .. value64 .. '"}'
   return wrk.format("POST", "/v3/kv/put", headers, body)
end
