-- Inventory: what should we mark down, bundle or stop reordering?
-- Stalled and falling products (rule in pipeline/warehouse/marts.py), those that used to sell most first, with whether
-- a bundle could move them.
SELECT
    stock_code,
    description,
    status,
    days_since_last_sale,
    round(revenue_previous_90d, 2) AS revenue_previous_90d,
    round(revenue_last_90d, 2) AS revenue_last_90d,
    round(revenue_change, 3) AS revenue_change,
    round(return_rate, 3) AS return_rate,
    bundles
FROM marts.slow_movers
ORDER BY revenue_previous_90d DESC, revenue_total DESC, stock_code
LIMIT 100;
