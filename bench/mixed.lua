-- bench/mixed.lua: 80% reads, 20% writes, drawn per request:
--   50% get, 20% list (records=15), 10% follows, 10% update, 10% create.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
function init(args) B.seed_random() end
function request()
  local r = math.random(100)
  local app, id = B.random_lead()
  if r <= 50 then return B.get(app, id)
  elseif r <= 70 then return B.list(app, "?records=15")
  elseif r <= 80 then return B.follows(app, id)
  elseif r <= 90 then return B.update(app, id)
  else return B.create(app) end
end
done = B.done
