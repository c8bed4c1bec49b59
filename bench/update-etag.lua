-- bench/update-etag.lua: PUT /leads/{id}/ over a pool of seeded leads whose
-- current ETags the script follows (common.lua's pool_updater), with
-- If-Match on every PUT when BENCH_IF_MATCH is set, else without: issue
-- 11's update under If-Match against the same updates without it.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local P = B.pool_updater((os.getenv("BENCH_IF_MATCH") or "") ~= "")
function init(args) B.seed_random() end
request = P.request
response = P.response
done = B.done
