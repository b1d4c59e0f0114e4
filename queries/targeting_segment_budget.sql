-- Targeting: where should the marketing budget go?
-- Per RFM segment: size, revenue share, customers expected to buy in the next 90 days, their predicted revenue
-- and the expected value per customer, so spend can follow value; with the recommended action.
SELECT
    segment,
    customers,
    round(revenue_share, 3) AS revenue_share,
    round(expected_buyers_90d, 1) AS expected_buyers_90d,
    round(predicted_revenue_90d, 2) AS predicted_revenue_90d,
    round(expected_value / customers, 2) AS expected_value_per_customer,
    main_kmeans_cluster_name,
    marketing_action
FROM marts.segment_overview
WHERE customers > 0
ORDER BY predicted_revenue_90d DESC;
