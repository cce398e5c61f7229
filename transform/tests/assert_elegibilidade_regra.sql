-- The eligibility rule's invariants on the dimension: a live customer is eligible
-- (elegivel_a_partir_de set) exactly when ATIVO and opted in, from sign-up plus the grace
-- period; tombstones carry no eligibility.
select dim.cliente_id
from {{ ref('dim_clientes_clube') }} dim
left join {{ ref('stg_clientes_clube') }} stg on stg.cliente_id = dim.cliente_id
where (dim._deleted and dim.elegivel_a_partir_de is not null)
   or (not dim._deleted and stg.cliente_id is null)
   or (not dim._deleted
       and (dim.elegivel_a_partir_de is not null) <> (dim.status_clube = 'ATIVO' and dim.opt_in_marketing))
   or (not dim._deleted
       and dim.elegivel_a_partir_de <> stg.data_cadastro + interval '{{ var("carencia_minutos") | int }} minutes')
