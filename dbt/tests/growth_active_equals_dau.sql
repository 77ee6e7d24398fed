-- The active states of growth accounting add up to the day's active users: new + retained
-- + resurrected = DAU, day by day (two views computed differently from users_cumulated).
SELECT g.day, g.new + g.retained + g.resurrected AS active, a.dau
  FROM {{ source('activity', 'growth_accounting_daily') }} g
  FULL JOIN {{ source('activity', 'activity_daily_users') }} a USING (day)
 WHERE a.dau IS DISTINCT FROM g.new + g.retained + g.resurrected
