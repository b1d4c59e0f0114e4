"""EDA assets: monthly sales, countries, products and cohort retention. Logic lives in pipeline.eda."""

import dagster as dg
import pandas as pd

from assets import keys
from assets._metadata import figure, preview
from assets._tables import warehouse_table
from assets.checks import schema_check
from pipeline import eda, plots_customers
from pipeline.schemas_customers import CohortRetention, CountrySales, MonthlySales, TopProducts

_SALES = keys.ins(cleaned=keys.CLEANED_TRANSACTIONS, rejected=keys.REJECTED_ROWS)
_CLEANED = keys.ins(cleaned=keys.CLEANED_TRANSACTIONS)


@warehouse_table(keys.EDA_MONTHLY_SALES, MonthlySales, group="eda", ins=_SALES)
def eda_monthly_sales(cleaned: pd.DataFrame, rejected: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Per month: revenue, invoices, customers (new vs returning), average basket value, cancellation rate."""
    monthly = eda.monthly_sales(cleaned, rejected)
    return dg.Output(monthly, metadata={"months": len(monthly), "plot": figure(plots_customers.monthly_sales_figure(monthly)),
                                        "preview": preview(monthly, 25)})


@warehouse_table(keys.EDA_COUNTRY_SALES, CountrySales, group="eda", ins=_CLEANED)
def eda_country_sales(cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Per country: revenue, customers, invoices and share of revenue, ranked."""
    countries = eda.country_sales(cleaned)
    return dg.Output(countries, metadata={"countries": len(countries),
                                          "plot": figure(plots_customers.country_sales_figure(countries)),
                                          "preview": preview(countries)})


@warehouse_table(keys.EDA_TOP_PRODUCTS, TopProducts, group="eda", ins=_SALES)
def eda_top_products(cleaned: pd.DataFrame, rejected: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Per product: revenue, quantity, invoices, customers and return rate, ranked by revenue."""
    products = eda.top_products(cleaned, rejected)
    return dg.Output(products, metadata={"products": len(products), "preview": preview(products, 20)})


@warehouse_table(keys.EDA_COHORT_RETENTION, CohortRetention, group="eda", ins=_CLEANED)
def eda_cohort_retention(cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Monthly acquisition cohorts x months since first purchase: share of the cohort active."""
    cohorts = eda.cohort_retention(cleaned)
    return dg.Output(cohorts, metadata={"cohorts": int(cohorts["cohort_month"].nunique()),
                                        "plot": figure(plots_customers.cohort_heatmap_figure(cohorts))})


eda_monthly_sales_schema = schema_check(keys.EDA_MONTHLY_SALES, MonthlySales)
eda_country_sales_schema = schema_check(keys.EDA_COUNTRY_SALES, CountrySales)
eda_top_products_schema = schema_check(keys.EDA_TOP_PRODUCTS, TopProducts)
eda_cohort_retention_schema = schema_check(keys.EDA_COHORT_RETENTION, CohortRetention)
