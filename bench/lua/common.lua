-- common.lua - what every workload script shares: the key space, uniform
-- and zipfian key choice, base64, per-thread seeding, and the result line
-- that done() writes for bench/run.
--
-- Each wrk thread runs its own Lua state (its own copy of this file); the
-- main thread runs setup() and done(). Parameters come from the
-- environment, set by bench/run: BENCH_ROWS, BENCH_CELLS, BENCH_VALUE_BYTES,
-- BENCH_TABLE, BENCH_OUT (the file done() appends its JSON line to).
local M = {}

M.rows = tonumber(os.getenv("BENCH_ROWS") or "10000")
M.cells = tonumber(os.getenv("BENCH_CELLS") or "10")
M.value_bytes = tonumber(os.getenv("BENCH_VALUE_BYTES") or "100")
M.table = os.getenv("BENCH_TABLE") or "bench"
M.n = M.rows * M.cells

-- A fixed printable value of value_bytes bytes.
local chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local parts = {}
for i = 1, M.value_bytes do
   local k = (i * 7) % #chars + 1
   parts[i] = chars:sub(k, k)
end
M.value = table.concat(parts)

function M.row(i) return string.format("r%05d", i) end
function M.col(j) return string.format("c%02d", j) end

-- Cell number k (0 .. n-1) -> row, sortkey: row k / cells, cell k % cells.
function M.key(k)
   return M.row(math.floor(k / M.cells)), M.col(k % M.cells)
end

function M.uniform() return math.random(0, M.n - 1) end

-- YCSB's zipfian generator (theta 0.99) over n items, scrambled by a
-- multiplicative hash so the hot items are spread over rows and partitions
-- (YCSB's ScrambledZipfianGenerator does the same with FNV).
local theta = 0.99
local zetan, eta, alpha, half_pow
function M.zipf_init()
   local z = 0
   for i = 1, M.n do z = z + 1 / (i ^ theta) end
   zetan = z
   local zeta2 = 1 + 1 / (2 ^ theta)
   alpha = 1 / (1 - theta)
   eta = (1 - (2 / M.n) ^ (1 - theta)) / (1 - zeta2 / zetan)
   half_pow = 1 + 0.5 ^ theta
end
function M.zipf()
   local u = math.random()
   local uz = u * zetan
   local rank
   if uz < 1 then
      rank = 0
   elseif uz < half_pow then
      rank = 1
   else
      rank = math.floor(M.n * (eta * u - eta + 1) ^ alpha)
   end
   if rank >= M.n then rank = M.n - 1 end
   return (rank * 2654435761) % 4294967296 % M.n
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function M.base64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local n = #out
      out[n + 1] = b64chars:sub(math.floor(v / 262144) + 1, math.floor(v / 262144) + 1)
      out[n + 2] = b64chars:sub(math.floor(v / 4096) % 64 + 1, math.floor(v / 4096) % 64 + 1)
      out[n + 3] = b and b64chars:sub(math.floor(v / 64) % 64 + 1, math.floor(v / 64) % 64 + 1) or "="
      out[n + 4] = c and b64chars:sub(v % 64 + 1, v % 64 + 1) or "="
   end
   return table.concat(out)
end

-- Threads: give each its own seed, and with BENCH_NODES ("host:port,...")
-- its own node, round-robin (the replicated workloads: clients spread
-- over the cluster's nodes).
local counter = 0
local nodes = {}
for hp in string.gmatch(os.getenv("BENCH_NODES") or "", "[^,]+") do nodes[#nodes + 1] = hp end
function M.setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   if #nodes > 0 then
      local host, port = nodes[(counter - 1) % #nodes + 1]:match("^(.*):(%d+)$")
      thread.addr = wrk.lookup(host, port)[1]
   end
end
function M.seed()
   local tid = tonumber(rawget(_G, "tid")) or 0 -- set by setup() in this thread's state
   math.randomseed(os.time() + tid * 7919)
end

-- Main thread, at the end: one JSON line with the figures bench/run reads.
-- "q" is the latency quantile function on a grid (percent -> us), fine in
-- the tail, so bench/run can merge the latencies of several runs.
local grid = {}
for p = 1, 99 do grid[#grid + 1] = p end
for p = 99.1, 99.95, 0.1 do grid[#grid + 1] = p end
grid[#grid + 1] = 99.99
function M.done(summary, latency, requests)
   local e = summary.errors
   local q = {}
   for i, p in ipairs(grid) do
      q[i] = string.format("[%g,%d]", p, latency:percentile(p))
   end
   local line = string.format(
      '{"requests":%d,"duration_us":%d,"min_us":%d,"max_us":%d,"q":[%s],' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, latency.min, latency.max, table.concat(q, ","),
      e.connect, e.read, e.write, e.status, e.timeout)
   local path = os.getenv("BENCH_OUT")
   if path then
      local f = assert(io.open(path, "a"))
      f:write(line)
      f:close()
   else
      io.write(line)
   end
end

return M
