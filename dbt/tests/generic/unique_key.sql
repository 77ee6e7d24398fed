{#- unique_key: no two rows share the values of `columns` (a composite key). Nulls count as
    equal, as GROUP BY treats them: user_devices_cumulated's key is UNIQUE NULLS NOT
    DISTINCT, so two rows with a null browser_type for one (user, month) are a duplicate. -#}
{% test unique_key(model, columns) %}
SELECT {{ columns | join(', ') }}, count(*) AS n_rows
  FROM {{ model }}
 GROUP BY {{ columns | join(', ') }}
HAVING count(*) > 1
{% endtest %}
