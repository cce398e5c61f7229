-- model.shop.customer_totals (models/marts/customer_totals.sql)

with __dbt__cte__stg_orders as (

select order_id, customer_id, amount, paid, ordered_at
from "analytics_raw"."raw_orders"
where paid

), orders as (
  select * from __dbt__cte__stg_orders
)
select
  c.id,
  c.name,
  coalesce(c.status, 'unknown') as status,
  count(o.order_id) as orders,
  coalesce(sum((o.amount * 100)::bigint), 0) as total_cents,
  coalesce(sum(o.amount), 0) >= 100 as vip,
  'BRL' as currency
from "analytics_staging"."stg_customers" c
left join orders o on o.customer_id = c.id
group by 1, 2, 3

