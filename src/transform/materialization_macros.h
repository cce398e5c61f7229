#pragma once

// The macros of dbt's global project that materializations call (custom ones from a
// project or package, written as {% materialization %} blocks): relations made, dropped
// and renamed, hooks, grants, docs and indexes, the SQL of create table/view as. Written
// for this runner from dbt's documented behaviour, in PostgreSQL's dialect; the relation
// work itself is the adapter's (adapter_api.h).

namespace pdv::transform {

inline constexpr char kMaterializationMacros[] = R"jinja(
{% macro run_hooks(hooks, inside_transaction=True) -%}
  {%- for hook in hooks -%}
    {%- if hook.get('transaction', True) == inside_transaction -%}
      {%- set rendered = hook.get('sql') | trim -%}
      {%- if rendered | length > 0 -%}
        {%- call statement(auto_begin=inside_transaction) -%}{{ rendered }}{%- endcall -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
{%- endmacro %}

{% macro make_intermediate_relation(base_relation, suffix='__dbt_tmp') -%}
  {{ return(base_relation.incorporate(path={"identifier": base_relation.identifier ~ suffix})) }}
{%- endmacro %}

{% macro make_temp_relation(base_relation, suffix='__dbt_tmp') -%}
  {%- set now = modules.datetime.datetime.utcnow() -%}
  {%- set identifier = base_relation.identifier ~ suffix ~ now.strftime('%H%M%S') ~ now.microsecond -%}
  {{ return(api.Relation.create(identifier=identifier, type='table')) }}
{%- endmacro %}

{% macro make_backup_relation(base_relation, backup_relation_type, suffix='__dbt_backup') -%}
  {{ return(base_relation.incorporate(path={"identifier": base_relation.identifier ~ suffix}, type=backup_relation_type)) }}
{%- endmacro %}

{% macro load_cached_relation(relation) -%}
  {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}

{% macro drop_relation(relation) -%}{{ adapter.drop_relation(relation) }}{%- endmacro %}
{% macro drop_relation_if_exists(relation) -%}
  {%- if relation is not none -%}{{ adapter.drop_relation(relation) }}{%- endif -%}
{%- endmacro %}
{% macro truncate_relation(relation) -%}{{ adapter.truncate_relation(relation) }}{%- endmacro %}
{% macro rename_relation(from_relation, to_relation) -%}{{ adapter.rename_relation(from_relation, to_relation) }}{%- endmacro %}
{% macro create_schema(relation) -%}{{ adapter.create_schema(relation) }}{%- endmacro %}
{% macro drop_schema(relation) -%}{{ adapter.drop_schema(relation) }}{%- endmacro %}

{% macro list_relations_without_caching(schema_relation) -%}
  {{ return(run_query("select current_database() as database, c.relname as name, n.nspname as schema, case c.relkind when 'v' then 'view' when 'm' then 'materialized_view' else 'table' end as type from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = '" ~ schema_relation.schema | replace("'", "''") ~ "' order by c.relname")) }}
{%- endmacro %}

{% macro get_create_table_as_sql(temporary, relation, sql) -%}
  {{ return(adapter.dispatch('get_create_table_as_sql', 'dbt')(temporary, relation, sql)) }}
{%- endmacro %}
{% macro default__get_create_table_as_sql(temporary, relation, sql) -%}
  {{ return(create_table_as(temporary, relation, sql)) }}
{%- endmacro %}
{% macro create_table_as(temporary, relation, compiled_code, language='sql') -%}
  {{ adapter.dispatch('create_table_as', 'dbt')(temporary, relation, compiled_code) }}
{%- endmacro %}
{% macro default__create_table_as(temporary, relation, sql) -%}
create {% if temporary %}temporary {% elif config.get('unlogged', false) %}unlogged {% endif %}table {{ relation.include(database=False, schema=(not temporary)) }}
as (
{{ sql }}
);
{%- endmacro %}

{% macro get_create_view_as_sql(relation, sql) -%}
  {{ return(adapter.dispatch('get_create_view_as_sql', 'dbt')(relation, sql)) }}
{%- endmacro %}
{% macro default__get_create_view_as_sql(relation, sql) -%}
  {{ return(create_view_as(relation, sql)) }}
{%- endmacro %}
{% macro create_view_as(relation, sql) -%}
  {{ adapter.dispatch('create_view_as', 'dbt')(relation, sql) }}
{%- endmacro %}
{% macro default__create_view_as(relation, sql) -%}
create view {{ relation }} as (
{{ sql }}
);
{%- endmacro %}

{% macro get_empty_subquery_sql(select_sql, select_sql_header=none) -%}
select * from (
{{ select_sql }}
) as __dbt_sbq
where false
limit 0
{%- endmacro %}

{% macro get_columns_in_query(select_sql) -%}
  {%- set names = [] -%}
  {%- if execute -%}
    {%- call statement('get_columns_in_query', fetch_result=True, auto_begin=False) -%}
      {{ get_empty_subquery_sql(select_sql) }}
    {%- endcall -%}
    {%- for column in load_result('get_columns_in_query').table.columns -%}
      {%- do names.append(column.name) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(names) }}
{%- endmacro %}

{% macro should_revoke(existing_relation, full_refresh_mode=True) -%}
  {{ return(existing_relation is not none) }}
{%- endmacro %}

{# grant_config: {privilege: grantee or [grantees]}. With should_revoke, what the relation
   grants beyond it (to others than its owner) is revoked first. #}
{% macro apply_grants(relation, grant_config, should_revoke=True) -%}
  {%- if grant_config and execute -%}
    {%- if should_revoke -%}
      {%- set current = run_query("select grantee, lower(privilege_type) from information_schema.role_table_grants where grantor = current_role and grantee <> current_role and table_schema = '" ~ relation.schema | replace("'", "''") ~ "' and table_name = '" ~ relation.identifier | replace("'", "''") ~ "'") -%}
      {%- for row in current.rows -%}
        {%- set wanted = grant_config.get(row[1], []) -%}
        {%- set wanted = [wanted] if wanted is string else wanted -%}
        {%- if row[0] not in wanted -%}
          {%- call statement('revoke') -%}revoke {{ row[1] }} on {{ relation }} from {{ adapter.quote(row[0]) }}{%- endcall -%}
        {%- endif -%}
      {%- endfor -%}
    {%- endif -%}
    {%- for privilege, grantees in grant_config.items() -%}
      {%- set grantees = [grantees] if grantees is string else grantees -%}
      {%- if grantees | length > 0 -%}
        {%- call statement('grant') -%}grant {{ privilege }} on {{ relation }} to {{ grantees | join(', ') }}{%- endcall -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro persist_docs(relation, model, for_relation=True, for_columns=True) -%}
  {%- set docs = config.get('persist_docs', {}) or {} -%}
  {%- if execute and for_relation and docs.get('relation') and model.description -%}
    {%- call statement('persist_docs') -%}
comment on {{ 'view' if relation.type == 'view' else 'materialized view' if relation.type == 'materialized_view' else 'table' }} {{ relation }} is $dbt_comment_literal_block${{ model.description }}$dbt_comment_literal_block$
    {%- endcall -%}
  {%- endif -%}
  {%- if execute and for_columns and docs.get('columns') -%}
    {%- for name, column in model.columns.items() -%}
      {%- if column.get('description') -%}
        {%- call statement('persist_docs') -%}
comment on column {{ relation }}.{{ adapter.quote(name) if column.get('quote') else name }} is $dbt_comment_literal_block${{ column.get('description') }}$dbt_comment_literal_block$
        {%- endcall -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro create_indexes(relation) -%}
  {%- for index in config.get('indexes', []) or [] -%}
    {%- call statement('create_index') -%}
create {% if index.get('unique') %}unique {% endif %}index on {{ relation }} {% if index.get('type') %}using {{ index.get('type') }} {% endif %}({{ index.get('columns') | join(', ') }})
    {%- endcall -%}
  {%- endfor -%}
{%- endmacro %}
)jinja";

}  // namespace pdv::transform
