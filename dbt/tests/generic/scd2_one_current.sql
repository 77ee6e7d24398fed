{#- scd2_one_current: exactly one version of each natural key is current, and it is the
    latest one; except for a key whose latest change (in its change history, `changes`) is a
    tombstone: a deleted entity has no current version. Of two changes at one instant the
    tombstone wins, as in the merge (README, "Dimensions (SCD2)"). -#}
{% test scd2_one_current(model, key, changes) %}
WITH versions AS (
    SELECT {{ key }} AS natural_key,
           count(*) FILTER (WHERE is_current)            AS n_current,
           max(valid_from)                               AS last_valid_from,
           max(valid_from) FILTER (WHERE is_current)     AS current_valid_from
      FROM {{ model }}
     GROUP BY 1
),
latest AS (
    SELECT DISTINCT ON ({{ key }}) {{ key }} AS natural_key, is_tombstone
      FROM {{ changes }}
     ORDER BY {{ key }}, updated_at DESC, is_tombstone DESC
)
SELECT v.*, l.is_tombstone AS deleted
  FROM versions v
  LEFT JOIN latest l USING (natural_key)
 WHERE v.n_current <> CASE WHEN l.is_tombstone THEN 0 ELSE 1 END
    OR (v.n_current = 1 AND v.current_valid_from <> v.last_valid_from)
{% endtest %}
