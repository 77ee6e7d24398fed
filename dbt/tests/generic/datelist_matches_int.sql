{#- datelist_matches_int: the datelist (column_name) and the bit integer describe the same
    days: every date lies in the row's month, dates are distinct and most recent first,
    and bit d-1 of int_column is set exactly for the listed days d. -#}
{% test datelist_matches_int(model, column_name, int_column='datelist_int', month_column='month_start') %}
SELECT r.*
  FROM {{ model }} r
 CROSS JOIN LATERAL (
       SELECT bool_and(date_trunc('month', d)::date = r.{{ month_column }}) AS in_month,
              COALESCE(bit_or(1 << (extract(day FROM d)::integer - 1)), 0) AS bits,
              count(*) = count(DISTINCT d) AS distinct_days,
              array_agg(d ORDER BY d DESC) = r.{{ column_name }} AS newest_first
         FROM unnest(r.{{ column_name }}) AS d) x
 WHERE cardinality(r.{{ column_name }}) = 0
    OR NOT x.in_month OR NOT x.distinct_days OR NOT x.newest_first
    OR x.bits <> r.{{ int_column }}
{% endtest %}
