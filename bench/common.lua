-- bench/common.lua: shared by the wrk scripts of bench/run (loaded with dofile).
--
-- Environment (set by bench/run):
--   BENCH_KEY1, BENCH_TOKEN1   AppId and bearer token of the first app
--   BENCH_KEY2, BENCH_TOKEN2   the same for the second app
--   BENCH_IDS                  id list written at seed time: one "APP ID" a
--                              line, APP being 1 or 2 (a sample spread evenly
--                              over the whole table when it is large)
-- Every wrk thread runs this file in its own Lua state, so each has its own
-- copy of the ids and its own random sequence.

local M = {}

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error("bench: environment variable " .. name .. " is not set")
  end
  return v
end

M.headers = {
  { ["Authorization"] = "Bearer " .. env("BENCH_TOKEN1"), ["AppId"] = env("BENCH_KEY1") },
  { ["Authorization"] = "Bearer " .. env("BENCH_TOKEN2"), ["AppId"] = env("BENCH_KEY2") },
}
M.json_headers = {}
for i, h in ipairs(M.headers) do
  M.json_headers[i] = {
    ["Authorization"] = h["Authorization"], ["AppId"] = h["AppId"],
    ["Content-Type"] = "application/json",
  }
end

-- Ids are loaded on first use only, so scripts that never need them (list)
-- do not pay for reading the file in every thread.
local ids_app, ids_id, ids_n = nil, nil, 0
local function load_ids()
  local path = env("BENCH_IDS")
  local f = assert(io.open(path, "r"))
  ids_app, ids_id = {}, {}
  for line in f:lines() do
    local a, id = line:match("^(%d) (%S+)$")
    if a then
      ids_n = ids_n + 1
      ids_app[ids_n] = tonumber(a)
      ids_id[ids_n] = id
    end
  end
  f:close()
  if ids_n == 0 then error("bench: no ids in " .. path) end
end

-- A random seeded lead: its app (1 or 2) and its id.
function M.random_lead()
  if ids_app == nil then load_ids() end
  local k = math.random(ids_n)
  return ids_app[k], ids_id[k]
end

local stages = { "new", "contacted", "qualified", "proposal", "negotiation" }
local sources = { "website", "referral", "cold_call", "event" }
local counter = 0

function M.create_body()
  counter = counter + 1
  return string.format(
    '{"lead":{"name":"Bench create %d","source":"%s","account_id":"0000acc0-0000-7000-8000-%012x",' ..
    '"value":%d.%02d,"stage":"%s","probability":%d}}',
    counter, sources[math.random(#sources)], math.random(0, 9999), math.random(0, 99999),
    math.random(0, 99), stages[math.random(#stages)], math.random(0, 100))
end

function M.update_body()
  return string.format('{"lead":{"stage":"%s","probability":%d,"value":%d}}',
    stages[math.random(#stages)], math.random(0, 100), math.random(0, 999999))
end

-- BENCH_REQUEST_ID set: every request also sends an X-Request-Id (what a
-- proxy or a client tracing its calls adds), for the --ops comparison.
if os.getenv("BENCH_REQUEST_ID") ~= nil and os.getenv("BENCH_REQUEST_ID") ~= "" then
  for i, h in ipairs(M.headers) do
    h["X-Request-Id"] = "bench-" .. os.getenv("BENCH_REQUEST_ID") .. "-" .. i
  end
end

function M.get(app, id)
  return wrk.format("GET", "/leads/" .. id, M.headers[app])
end

function M.list(app, query)
  return wrk.format("GET", "/leads/" .. query, M.headers[app])
end

function M.follows(app, id)
  return wrk.format("GET", "/leads/" .. id .. "/follows", M.headers[app])
end

function M.create(app)
  return wrk.format("POST", "/leads/", M.json_headers[app], M.create_body())
end

function M.update(app, id)
  return wrk.format("PUT", "/leads/" .. id .. "/", M.json_headers[app], M.update_body())
end

-- A seeded lead by its place in the id list (1 to the list's length, wrapping).
function M.lead_at(k)
  if ids_app == nil then load_ids() end
  k = (k - 1) % ids_n + 1
  return ids_app[k], ids_id[k]
end

-- Updates of a pool of leads whose current ETag this thread knows (issue
-- 11): a GET of each first, then each PUT's answer gives the next ETag, and
-- no lead is in flight twice, so no update meets a 412. The requests and
-- the bookkeeping are the same with if_match false; only the If-Match
-- header is left out, so the two differ by what the server does with it.
function M.pool_updater(if_match)
  local size, fetched, start = 256, 0, nil
  local etag, app_of, ready, first, last, putting = {}, {}, {}, 1, 0, {}
  local P = {}
  function P.request()
    if start == nil then start = math.random(1000000) end
    if fetched < size then
      fetched = fetched + 1
      local app, id = M.lead_at(start + fetched)
      app_of[id] = app
      return M.get(app, id)
    end
    if first > last then -- every lead of the pool in flight: read one outside it
      local app, id = M.lead_at(start + size + 1)
      return M.get(app, id)
    end
    local id = ready[first]
    ready[first] = nil
    first = first + 1
    putting[id] = true
    local h = {}
    for k, v in pairs(M.json_headers[app_of[id]]) do h[k] = v end
    if if_match then h["If-Match"] = etag[id] end
    return wrk.format("PUT", "/leads/" .. id .. "/", h, M.update_body())
  end
  function P.response(status, headers, body)
    local id = body:match('"id":"([%x%-]+)"')
    local tag = headers["etag"] or headers["ETag"]
    if id == nil or tag == nil or app_of[id] == nil then return end
    local known = etag[id] ~= nil
    etag[id] = tag
    if putting[id] or not known then
      putting[id] = nil
      last = last + 1
      ready[last] = id
    end
  end
  return P
end

-- Seeds each thread's generator differently.
local seeded = false
function M.seed_random()
  if seeded then return end
  seeded = true
  local addr = tostring({}):match("0x(%x+)") or "0"
  math.randomseed(os.time() + (tonumber(addr, 16) or 0) % 1000003)
  for _ = 1, 10 do math.random() end
end

-- One machine-readable line for bench/run; latencies in microseconds.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end

return M
