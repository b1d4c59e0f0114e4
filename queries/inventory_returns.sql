-- Inventory: which products come back most, and what do the returns cost?
-- Products sold in some volume (at least 20 invoices) ranked by return rate, with the returned units.
SELECT
    stock_code,
    description,
    invoices,
    quantity,
    returned_quantity,
    round(return_rate, 3) AS return_rate,
    round(revenue, 2) AS revenue
FROM marts.product_360
WHERE invoices >= 20 AND returned_quantity > 0
ORDER BY return_rate DESC, stock_code
LIMIT 50;
