-- bench/create-idem.lua: create.lua with an Idempotency-Key of its own on
-- every request (issue 11: a keyed create against a plain one).
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local prefix, n = nil, 0
function init(args)
  B.seed_random()
  prefix = string.format("bench-%x-%x", os.time(), math.random(0, 0x7fffffff))
end
function request()
  n = n + 1
  local app = math.random(2)
  local h = {}
  for k, v in pairs(B.json_headers[app]) do h[k] = v end
  h["Idempotency-Key"] = prefix .. "-" .. n
  return wrk.format("POST", "/leads/", h, B.create_body())
end
done = B.done
