-- Retention: which repeat customers are unlikely to buy in the next 90 days?
-- Customers with more than one invoice whose predicted purchase probability is below one half, by what they
-- have spent; a call list for account managers before they lapse.
SELECT
    customer_id,
    country,
    segment,
    kmeans_cluster_name,
    frequency,
    recency_days,
    round(monetary, 2) AS monetary,
    round(purchase_probability_90d, 3) AS purchase_probability_90d,
    round(expected_value, 2) AS expected_value
FROM marts.customer_360
WHERE frequency > 1 AND purchase_probability_90d < 0.5
ORDER BY monetary DESC, customer_id
LIMIT 100;
