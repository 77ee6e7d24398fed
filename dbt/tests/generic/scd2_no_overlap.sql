{#- scd2_no_overlap: the versions of one natural key never overlap. Ordered by valid_from,
    each version must end (valid_to not null) no later than the next one starts; only the
    last may be open-ended. (valid_to > valid_from is a CHECK constraint of the table.) -#}
{% test scd2_no_overlap(model, key, valid_from='valid_from', valid_to='valid_to') %}
SELECT *
  FROM (SELECT {{ key }}, {{ valid_from }}, {{ valid_to }},
               lead({{ valid_from }}) OVER (PARTITION BY {{ key }} ORDER BY {{ valid_from }})
                   AS next_valid_from
          FROM {{ model }}) v
 WHERE next_valid_from IS NOT NULL
   AND ({{ valid_to }} IS NULL OR {{ valid_to }} > next_valid_from)
{% endtest %}
