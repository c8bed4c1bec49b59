-- bench/ids.sql: writes the id list the wrk scripts read (one "APP ID" a
-- line, APP 1 or 2), run by bench/run with the parameters of seed.sql and
-- @step: every @step-th seeded lead, so at most about 200,000 lines spread
-- evenly over the whole table. Joined with leads, so every id listed exists.
.mode list
.separator " "
.headers off
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + @step FROM seq WHERE i + @step <= @n)
SELECT CASE WHEN leads.app_id = @app1 THEN 1 ELSE 2 END, leads.id
FROM seq JOIN leads
  ON leads.app_id = CASE WHEN seq.i <= @n1 THEN @app1 ELSE @app2 END
 AND leads.id = printf('%08x-0000-7000-8000-%012x', @pfx, seq.i);
