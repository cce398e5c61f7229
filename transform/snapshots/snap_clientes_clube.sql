{#- The history of each customer's club status and opt-in, for analytics: a new version
    whenever either changes, and one marking a customer deleted (hard_deletes:
    new_record). Only the id and these fields are kept, no personal data besides the id;
    `pdv subject forget` erases a customer's rows here too. Run by `pdv transform snapshot
    --platform` (on the operator's schedule), not by every watch run: comparing every
    customer costs a full read of staging. -#}
{% snapshot snap_clientes_clube %}
{{ config(
    target_schema='snapshots',
    unique_key='cliente_id',
    strategy='check',
    check_cols=['status_clube', 'opt_in_marketing'],
    hard_deletes='new_record'
) }}
select cliente_id, status_clube, opt_in_marketing, ultima_atualizacao
from {{ ref('stg_clientes_clube') }}
{% endsnapshot %}
