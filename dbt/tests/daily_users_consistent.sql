-- DAU <= WAU <= MAU on every day, stickiness is dau / mau, and the days run without gaps.
SELECT *
  FROM (SELECT *, lag(day) OVER (ORDER BY day) AS prev_day
          FROM {{ source('activity', 'activity_daily_users') }}) d
 WHERE NOT (dau <= wau AND wau <= mau)
    OR stickiness IS DISTINCT FROM round(dau::numeric / NULLIF(mau, 0), 4)
    OR (prev_day IS NOT NULL AND prev_day <> day - 1)
