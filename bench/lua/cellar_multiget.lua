-- cellar_multiget.lua - multi-get of a row's range of 10 cells, uniform random rows.
-- Run by bench/run with wrk; see common.lua for the parameters.
local c = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup, done = c.setup, c.done
local prefix, query
function init(args)
   c.seed()
   prefix = "/v1/tables/" .. c.table .. "/rows/"
   query = "?start=" .. c.col(0) .. "&stop=" .. c.col(9) .. "&stop_inclusive=true"
end
function request()
   return wrk.format("GET", prefix .. c.row(math.random(0, c.rows - 1)) .. query)
end
