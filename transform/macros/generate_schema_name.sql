{#- The platform's schemas are fixed by the data contract (staging, marts): a model's
    custom schema is used as it is, not prefixed with the target schema as dbt's default
    does. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
