-- Bundles: "customers who buy X also buy Y" for the web shop and the sales team.
-- Confident, non-redundant rules (all countries and per country), with the consequent's return rate so
-- products that often come back are not pushed.
SELECT
    r.scope,
    r.rule_rank,
    r.if_bought,
    r.then_bought,
    round(r.confidence, 3) AS confidence,
    round(r.lift, 1) AS lift,
    round(r.support, 4) AS support,
    round(p.return_rate, 3) AS then_bought_return_rate
FROM marts.top_rules AS r
LEFT JOIN marts.product_360 AS p ON len(r.consequents) = 1 AND p.stock_code = r.consequents[1]
WHERE r.confidence >= 0.5
ORDER BY r.scope, r.rule_rank
LIMIT 200;
