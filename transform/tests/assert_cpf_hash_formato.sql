-- No plaintext CPF reaches the POS dimension: cpf_hash is 64 lowercase hex characters.
select cliente_id
from {{ ref('dim_clientes_clube') }}
where cpf_hash !~ '^[0-9a-f]{64}$'
