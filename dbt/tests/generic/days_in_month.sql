{#- days_in_month: the array column has one element per day of the row's month (28-31),
    element [1] being day 1: cardinality = days in month_column's month, lower bound 1. -#}
{% test days_in_month(model, column_name, month_column='month_start') %}
SELECT {{ month_column }}, cardinality({{ column_name }}) AS elements,
       array_lower({{ column_name }}, 1) AS lower_bound
  FROM {{ model }}
 WHERE cardinality({{ column_name }})
           <> (({{ month_column }} + interval '1 month')::date - {{ month_column }})
    OR array_lower({{ column_name }}, 1) <> 1
{% endtest %}
