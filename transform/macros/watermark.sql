{#- The newest RAW position a model already holds, as a literal: a literal lets the planner
    use the indexes on the LSN columns, where a subquery would make it scan everything. -#}
{% macro lsn_watermark(relation) -%}
  {%- if execute -%}
    {%- set result = run_query("select coalesce(max(_lsn), '0/0')::text from " ~ relation) -%}
    '{{ result.columns[0].values()[0] }}'::pg_lsn
  {%- else -%}
    '0/0'::pg_lsn
  {%- endif -%}
{%- endmacro %}
