-- bench/get.lua: GET /leads/{id} over random seeded ids of both apps.
-- Also drives the nginx limit (nginx answers every path with the same body).
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
function init(args) B.seed_random() end
function request()
  return B.get(B.random_lead())
end
done = B.done
