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

{#- The bound of an incremental run: RAW's newest position, fixed by the run's pre-hook in
    its own transaction, and read by every later statement of the run. Under READ
    COMMITTED each statement sees its own snapshot: without one bound, a change committed
    between the pre-hook and the main query would be seen by one and not the other (a
    delete missed for good). cdc commits RAW in position order, so everything up to the
    bound is there for every later statement. -#}
{% macro set_raw_high_water(relation) -%}
  select set_config('pdv.raw_high_water', coalesce(max(_cdc_lsn), '0/0')::text, true)
  from {{ relation }}
{%- endmacro %}

{% macro raw_high_water() -%}
  current_setting('pdv.raw_high_water')::pg_lsn
{%- endmacro %}
