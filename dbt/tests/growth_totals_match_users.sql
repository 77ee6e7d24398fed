-- growth_accounting_daily / _weekly (running sums, no row per user) equal the per-user
-- states of user_growth_daily / _weekly counted per period.
WITH per_user AS (
    SELECT 'day' AS grain, day AS period, state FROM {{ source('activity', 'user_growth_daily') }}
    UNION ALL
    SELECT 'week', week_start, state FROM {{ source('activity', 'user_growth_weekly') }}
),
counted AS (
    SELECT grain, period,
           count(*) FILTER (WHERE state = 'new')         AS new,
           count(*) FILTER (WHERE state = 'retained')    AS retained,
           count(*) FILTER (WHERE state = 'resurrected') AS resurrected,
           count(*) FILTER (WHERE state = 'churned')     AS churned,
           count(*) FILTER (WHERE state = 'stale')       AS stale
      FROM per_user GROUP BY 1, 2
),
totals AS (
    SELECT 'day' AS grain, day AS period, new, retained, resurrected, churned, stale
      FROM {{ source('activity', 'growth_accounting_daily') }}
    UNION ALL
    SELECT 'week', week_start, new, retained, resurrected, churned, stale
      FROM {{ source('activity', 'growth_accounting_weekly') }}
)
SELECT *
  FROM totals t
  FULL JOIN counted c USING (grain, period)
 WHERE (t.new, t.retained, t.resurrected, t.churned, t.stale)
       IS DISTINCT FROM (c.new, c.retained, c.resurrected, c.churned, c.stale)
