-- 0 <= l7 <= min(l28, 7) and 1 <= l28 <= 28: the windows nest.
SELECT *
  FROM {{ source('activity', 'user_activity_l7_l28') }}
 WHERE l7 < 0 OR l7 > 7 OR l7 > l28 OR l28 < 1 OR l28 > 28
