-- Every (user, month) of user_devices_cumulated is in users_cumulated, whose datelist_int
-- holds at least the days of all the user's browsers (users_cumulated also counts the
-- days on unknown and null devices, so it may hold more, never less).
SELECT d.user_id, d.month_start, d.days AS device_days, u.datelist_int
  FROM (SELECT user_id, month_start, bit_or(datelist_int) AS days
          FROM {{ source('activity', 'user_devices_cumulated') }}
         GROUP BY 1, 2) d
  LEFT JOIN {{ source('activity', 'users_cumulated') }} u USING (user_id, month_start)
 WHERE u.user_id IS NULL OR (u.datelist_int & d.days) <> d.days
