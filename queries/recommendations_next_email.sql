-- Recommendations: what goes into each loyal customer's next email?
-- The top 3 products they have never bought (setting 'new_only'), with the reason in words, for the segments
-- worth an upsell.
SELECT
    c.customer_id,
    c.segment,
    c.country,
    r.rank,
    r.stock_code,
    r.description,
    r.source,
    r.reason
FROM marts.customer_360 AS c
JOIN analytics.recommendations AS r ON r.customer_id = c.customer_id
WHERE r.setting = 'new_only'
  AND r.rank <= 3
  AND c.segment IN ('Champions', 'Loyal Customers', 'Potential Loyalists')
ORDER BY c.expected_value DESC, c.customer_id, r.rank
LIMIT 300;
