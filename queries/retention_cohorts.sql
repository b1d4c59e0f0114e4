-- Retention: how many customers of each acquisition month come back 1, 3, 6 and 12 months later?
SELECT
    CAST(cohort_month AS DATE) AS cohort_month,
    max(cohort_size) AS cohort_size,
    round(max(retention_rate) FILTER (WHERE months_since_first = 1), 3) AS month_1,
    round(max(retention_rate) FILTER (WHERE months_since_first = 3), 3) AS month_3,
    round(max(retention_rate) FILTER (WHERE months_since_first = 6), 3) AS month_6,
    round(max(retention_rate) FILTER (WHERE months_since_first = 12), 3) AS month_12
FROM analytics.eda_cohort_retention
GROUP BY cohort_month
ORDER BY cohort_month;
