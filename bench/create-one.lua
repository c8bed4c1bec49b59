-- bench/create-one.lua: POST /leads/ with a JSON body, to the first app (the
-- one bench/webhooks subscribes webhooks to). With BENCH_DELAY_MS set, each
-- connection waits that long between its requests: a steady pace.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local wait_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
function init(args) B.seed_random() end
if wait_ms ~= nil then
  function delay() return wait_ms end
end
function request()
  return B.create(1)
end
done = B.done
