-- Inventory: which products must never be out of stock?
-- Products that tie the catalogue together (highest betweenness in the co-purchase network) or sit in many
-- bundles, with their revenue rank; a stock-out of one of them breaks many baskets.
SELECT
    stock_code,
    description,
    network_degree,
    round(betweenness_centrality, 4) AS betweenness_centrality,
    network_community,
    bundles,
    revenue_rank,
    round(revenue_last_90d, 2) AS revenue_last_90d
FROM marts.product_360
WHERE network_degree IS NOT NULL
ORDER BY betweenness_centrality DESC, bundles DESC, stock_code
LIMIT 50;
