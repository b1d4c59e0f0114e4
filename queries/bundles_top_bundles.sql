-- Bundles: which products should we sell together, and how much revenue do they already move?
-- The strongest rule-based bundles over all countries, with how often the whole bundle is already bought in
-- one invoice and the share of the products' revenue made on those invoices.
SELECT
    bundle_id,
    array_to_string(descriptions, ' + ') AS bundle,
    size,
    round(lift, 1) AS lift,
    round(confidence, 3) AS confidence,
    invoices_with_all,
    round(bundle_revenue, 2) AS bundle_revenue,
    round(joint_revenue / nullif(bundle_revenue, 0), 3) AS share_sold_together
FROM analytics.product_bundles
WHERE country IS NULL
ORDER BY lift DESC, bundle_id
LIMIT 25;
