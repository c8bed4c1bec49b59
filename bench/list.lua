-- bench/list.lua: GET /leads/?QUERY for the first app, QUERY taken from
-- BENCH_QUERY (e.g. "?records=15", "?records=15&page=5000"). The request
-- never changes, so it is formatted once; it is still handed to wrk by a
-- request() function, as in get.lua (and so in the nginx limit), so that
-- every scenario costs the load generator about the same per request (a
-- script without request() lets wrk reuse a static buffer, which is cheaper
-- and would flatter the list figures against the limit).
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local req = B.list(1, os.getenv("BENCH_QUERY") or "?records=15")
function request() return req end
done = B.done
