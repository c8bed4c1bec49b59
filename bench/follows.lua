-- bench/follows.lua: GET /leads/{id}/follows over random seeded leads.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
function init(args) B.seed_random() end
function request()
  return B.follows(B.random_lead())
end
done = B.done
