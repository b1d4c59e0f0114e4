-- Recommendations: which products will the campaign push, and is there stock and margin for them?
-- Products most often in customers' top-k lists, with their recent sales and return rate.
SELECT
    stock_code,
    description,
    recommended_to_customers,
    revenue_rank,
    round(revenue_last_90d, 2) AS revenue_last_90d,
    round(return_rate, 3) AS return_rate,
    bundles
FROM marts.product_360
WHERE recommended_to_customers > 0
ORDER BY recommended_to_customers DESC, stock_code
LIMIT 50;
