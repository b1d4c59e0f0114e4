"""EDA assets: monthly sales, countries, products and cohort retention. Logic lives in pipeline.eda.summaries.

The tables aggregate the staging lines inside the warehouse (``sales_lines.warehouse_lines``): the lines are
upstream dependencies, not loaded inputs, so a million of them never pass through pandas.
"""

import dagster as dg
import pandas as pd

from assets import keys
from assets._metadata import figure, preview
from assets._tables import warehouse_table
from assets.checks import schema_check
from pipeline.common import lines as sales_lines
from pipeline.eda.schemas import CohortRetention, CountrySales, MonthlySales, TopProducts
from pipeline.eda import plots, summaries
from resources import Warehouse

# Dependencies on the staging tables that load nothing: the SQL reads them in place.
SALES_LINES = {
    "cleaned": dg.AssetIn(key=keys.CLEANED_TRANSACTIONS, dagster_type=dg.Nothing),
    "rejected": dg.AssetIn(key=keys.REJECTED_ROWS, dagster_type=dg.Nothing),
}
_CLEANED = {"cleaned": SALES_LINES["cleaned"]}


@warehouse_table(keys.EDA_MONTHLY_SALES, MonthlySales, group="eda", ins=SALES_LINES)
def eda_monthly_sales(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """Per month: revenue, invoices, customers (new vs returning), average basket value, cancellation rate."""
    with warehouse.connect() as conn:
        monthly = summaries.monthly_sales(*sales_lines.warehouse_lines(conn))
    return dg.Output(monthly, metadata={"months": len(monthly), "plot": figure(plots.monthly_sales_figure(monthly)),
                                        "preview": preview(monthly, 25)})


@warehouse_table(keys.EDA_COUNTRY_SALES, CountrySales, group="eda", ins=_CLEANED)
def eda_country_sales(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """Per country: revenue, customers, invoices and share of revenue, ranked."""
    with warehouse.connect() as conn:
        countries = summaries.country_sales(sales_lines.warehouse_lines(conn).cleaned)
    return dg.Output(countries, metadata={"countries": len(countries),
                                          "plot": figure(plots.country_sales_figure(countries)),
                                          "preview": preview(countries)})


@warehouse_table(keys.EDA_TOP_PRODUCTS, TopProducts, group="eda", ins=SALES_LINES)
def eda_top_products(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """Per product: revenue, quantity, invoices, customers and return rate, ranked by revenue."""
    with warehouse.connect() as conn:
        products = summaries.top_products(*sales_lines.warehouse_lines(conn))
    return dg.Output(products, metadata={"products": len(products), "preview": preview(products, 20)})


@warehouse_table(keys.EDA_COHORT_RETENTION, CohortRetention, group="eda", ins=_CLEANED)
def eda_cohort_retention(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """Monthly acquisition cohorts x months since first purchase: share of the cohort active."""
    with warehouse.connect() as conn:
        cohorts = summaries.cohort_retention(sales_lines.warehouse_lines(conn).cleaned)
    return dg.Output(cohorts, metadata={"cohorts": int(cohorts["cohort_month"].nunique()),
                                        "plot": figure(plots.cohort_heatmap_figure(cohorts))})


eda_monthly_sales_schema = schema_check(keys.EDA_MONTHLY_SALES, MonthlySales)
eda_country_sales_schema = schema_check(keys.EDA_COUNTRY_SALES, CountrySales)
eda_top_products_schema = schema_check(keys.EDA_TOP_PRODUCTS, TopProducts)
eda_cohort_retention_schema = schema_check(keys.EDA_COHORT_RETENTION, CohortRetention)
