-- bench/create.lua: POST /leads/ with a JSON body, to either app at random.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
function init(args) B.seed_random() end
function request()
  return B.create(math.random(2))
end
done = B.done
