-- bench/search.lua: GET /leads/?search=TERM&count=none for the first app,
-- TERM a random run of digits of a seeded name ("Bench lead 123456"): three
-- to five digits, so some terms are rare (a few dozen leads hold them:
-- the trigram index finds them) and some common (thousands: the newest
-- leads are walked), as a person typing a number would make them.
local B = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
B.seed_random()
local extra = os.getenv("BENCH_QUERY") or ""
function request()
  local digits = math.random(3, 5)
  local term = tostring(math.random(10 ^ (digits - 1), 10 ^ digits - 1))
  return wrk.format("GET", "/leads/?search=" .. term .. "&count=none" .. extra, B.headers[1])
end
done = B.done
