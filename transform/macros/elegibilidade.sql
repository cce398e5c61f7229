{#- The eligibility rule (ARCHITECTURE.md): an active member who opted in to marketing is
    eligible once the grace period after sign-up has passed. The instant it starts is
    stored, not a flag, so that the API's answer is right at every instant. -#}
{% macro elegivel_a_partir_de(status_clube, opt_in_marketing, data_cadastro) -%}
  case
    when {{ status_clube }} = 'ATIVO' and {{ opt_in_marketing }}
      then {{ data_cadastro }} + interval '{{ var("carencia_minutos") | int }} minutes'
  end
{%- endmacro %}
