-- bench/update.lua: PUT /leads/{id}/ (stage, probability, value) over random
-- seeded leads.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
function init(args) B.seed_random() end
function request()
  local app, id = B.random_lead()
  return B.update(app, id)
end
done = B.done
