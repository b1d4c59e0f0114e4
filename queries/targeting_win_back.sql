-- Targeting: which valuable customers are slipping away, and what do we offer them?
-- Customers in the segments that need a win-back or reactivation campaign, most valuable first, with the
-- segment's marketing action and the first product to put in front of them.
SELECT
    customer_id,
    country,
    segment,
    recency_days,
    frequency,
    round(monetary, 2) AS monetary,
    round(purchase_probability_90d, 3) AS purchase_probability_90d,
    round(expected_value, 2) AS expected_value,
    recommendation_1_description,
    recommendation_1_reason,
    marketing_action
FROM marts.customer_360
WHERE segment IN ('At Risk', 'Can''t Lose Them', 'About to Sleep', 'Need Attention')
ORDER BY expected_value DESC, customer_id
LIMIT 100;
