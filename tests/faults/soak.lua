-- tests/faults/soak.lua: the soak test's mixed load for wrk (test_soak.py runs it).
--
-- Environment: SOAK_KEY and SOAK_TOKEN (the app's credentials), SOAK_IDS (a
-- file with one "LEAD_ID" a line, seeded leads that are never deleted).
-- Per request, drawn at random: 80% reads, 20% writes:
--   45% GET /leads/{id}, 20% GET /leads/ (any page of 15 or 50), 15% GET
--   /leads/{id}/follows, 10% PUT /leads/{id}, 7% POST /leads/, 3% POST
--   /leads/{id}/follows.
-- Every response is counted by status class; done() prints one line:
--   SOAK requests=N s2xx=N s3xx=N s4xx=N s5xx=N connect=N read=N write=N timeout=N ...

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then error("soak.lua: " .. name .. " is not set") end
  return v
end

local ids, n_ids = {}, 0
local hdr, jhdr
local stages = { "new", "contacted", "qualified", "proposal", "negotiation" }
local seq = 0

function init(args)
  local f = assert(io.open(env("SOAK_IDS"), "r"))
  for line in f:lines() do
    if #line > 0 then
      n_ids = n_ids + 1
      ids[n_ids] = line
    end
  end
  f:close()
  if n_ids == 0 then error("soak.lua: no ids") end
  hdr = { ["Authorization"] = "Bearer " .. env("SOAK_TOKEN"), ["AppId"] = env("SOAK_KEY") }
  jhdr = { ["Authorization"] = hdr["Authorization"], ["AppId"] = hdr["AppId"],
           ["Content-Type"] = "application/json" }
  math.randomseed(os.time() * 1000 + (tid or 0))
  s2, s3, s4, s5 = 0, 0, 0, 0
  first4, first5 = "", ""
end

function request()
  local r = math.random(100)
  local id = ids[math.random(n_ids)]
  seq = seq + 1
  if r <= 45 then
    return wrk.format("GET", "/leads/" .. id, hdr)
  elseif r <= 65 then
    local rec = (math.random(2) == 1) and 15 or 50
    local pages = math.max(1, math.floor(n_ids / rec))
    return wrk.format("GET", string.format("/leads/?page=%d&records=%d", math.random(pages), rec), hdr)
  elseif r <= 80 then
    return wrk.format("GET", "/leads/" .. id .. "/follows", hdr)
  elseif r <= 90 then
    return wrk.format("PUT", "/leads/" .. id, jhdr, string.format(
      '{"lead":{"stage":"%s","probability":%d,"value":%d.%02d}}',
      stages[math.random(#stages)], math.random(0, 100), math.random(0, 999999), math.random(0, 99)))
  elseif r <= 97 then
    return wrk.format("POST", "/leads/", jhdr, string.format(
      '{"lead":{"name":"soak %d-%d","source":"website","value":%d,"stage":"%s"}}',
      tid or 0, seq, math.random(0, 100000), stages[math.random(#stages)]))
  else
    return wrk.format("POST", "/leads/" .. id .. "/follows", jhdr, string.format(
      '{"follow":{"title":"soak follow %d-%d","due_date":"2040-01-0%dT10:00:00Z"}}',
      tid or 0, seq, math.random(1, 9)))
  end
end

function response(status, headers, body)
  if status >= 500 then
    s5 = s5 + 1
    if first5 == "" then first5 = status .. " " .. string.sub(body or "", 1, 200) end
  elseif status >= 400 then
    s4 = s4 + 1
    if first4 == "" then first4 = status .. " " .. string.sub(body or "", 1, 200) end
  elseif status >= 300 then
    s3 = s3 + 1
  else
    s2 = s2 + 1
  end
end

function done(summary, latency, requests)
  local t2, t3, t4, t5 = 0, 0, 0, 0
  local e4, e5 = "", ""
  for _, t in ipairs(threads) do
    t2 = t2 + t:get("s2")
    t3 = t3 + t:get("s3")
    t4 = t4 + t:get("s4")
    t5 = t5 + t:get("s5")
    if e4 == "" then e4 = t:get("first4") end
    if e5 == "" then e5 = t:get("first5") end
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d duration_us=%d s2xx=%d s3xx=%d s4xx=%d s5xx=%d connect=%d read=%d " ..
    "write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, t2, t3, t4, t5, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  io.write("SOAK first4xx=" .. string.gsub(e4, "\n", " ") .. "\n")
  io.write("SOAK first5xx=" .. string.gsub(e5, "\n", " ") .. "\n")
end
