"""Link-analysis assets: product and customer networks and their centralities. Logic lives in pipeline.network.graphs."""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from assets._metadata import figure, preview
from assets._tables import cleaned_input, warehouse_table
from assets.checks import schema_check
from pipeline.network import graphs, plots
from pipeline.network.schemas import (
    CustomerCentrality,
    CustomerNetworkEdges,
    ProductCentrality,
    ProductNetworkEdges,
)

_KINDS = ("duckdb", "pandas", "networkx")




class ProductNetworkConfig(dg.Config):
    """Pruning of the product co-purchase network."""

    min_shared_invoices: int | None = Field(
        default=None, description="Edge threshold; default scales with the number of invoices (see pipeline.network.graphs).")
    top_k: int | None = Field(default=None, description="Highest-Jaccard neighbours per product; null: all.")
    max_basket_size: int = Field(default=250, description="Invoices with more distinct products are left out.")
    workers: int | None = Field(default=None, description="Threads counting pairs; default min(2, CPUs).")


class CustomerNetworkConfig(dg.Config):
    """Pruning of the customer projection."""

    min_shared_products: int = Field(default=10, description="Distinct products two customers must share.")
    top_k: int = Field(default=10, description="Highest-Jaccard neighbours kept per customer.")
    workers: int | None = Field(default=None, description="Threads counting pairs; default min(2, CPUs).")


class CentralityConfig(dg.Config):
    """How centralities are computed."""

    backend: str = Field(default="igraph", description="'igraph' (compiled, tested equal to networkx) or 'networkx'.")
    random_state: int = Field(default=0, description="Seed of the communities and the betweenness pivots.")
    max_exact_nodes: int | None = Field(
        default=graphs.DEFAULT_MAX_EXACT_NODES,
        description="Larger networks get betweenness sampled from `pivots` sources; null: always exact.")
    pivots: int = Field(default=graphs.DEFAULT_PIVOTS, description="Source nodes of sampled betweenness.")
    workers: int | None = Field(default=None, description="Processes for betweenness; default min(2, CPUs).")


def _centrality(config: CentralityConfig, edges: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Centralities of ``edges``; metadata says whether betweenness is exact and how concentrated it is."""
    scores = graphs.centrality(edges, backend=config.backend, random_state=config.random_state,
                                max_exact_nodes=config.max_exact_nodes, pivots=config.pivots,
                                workers=config.workers)
    sources = graphs.betweenness_sources(len(scores), max_exact_nodes=config.max_exact_nodes,
                                          pivots=config.pivots)
    return scores, {"nodes": len(scores), "betweenness_exact": sources == len(scores),
                    "betweenness_sources": sources, **graphs.betweenness_summary(scores)}


def _edges_output(edges: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """An edge table with its edge and node counts."""
    nodes = pd.concat([edges["source"], edges["target"]]).nunique()
    return dg.Output(edges, metadata={"edges": len(edges), "nodes": int(nodes), "preview": preview(edges)})


@warehouse_table(keys.PRODUCT_NETWORK_EDGES, ProductNetworkEdges, group="network",
                 ins=cleaned_input("invoice", "stock_code"), kinds=_KINDS)
def product_network_edges(config: ProductNetworkConfig, cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Product co-purchase edges: weight = Jaccard of the products' invoices, plus shared invoices, lift."""
    return _edges_output(graphs.product_network_edges(
        cleaned, min_shared_invoices=config.min_shared_invoices, top_k=config.top_k,
        max_basket_size=config.max_basket_size, workers=config.workers))


@warehouse_table(keys.PRODUCT_CENTRALITY, ProductCentrality, group="network",
                 ins=keys.ins(edges=keys.PRODUCT_NETWORK_EDGES), kinds=_KINDS)
def product_centrality(config: CentralityConfig, edges: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Degree, betweenness and eigenvector centrality, component and community of every product in the network."""
    scores, metadata = _centrality(config, edges)
    return dg.Output(scores, metadata={**metadata,
                                       "plot": figure(plots.product_network_figure(edges, scores)),
                                       "top_betweenness": preview(scores.sort_values("betweenness_centrality",
                                                                                     ascending=False), 10)})


@warehouse_table(keys.CUSTOMER_NETWORK_EDGES, CustomerNetworkEdges, group="network",
                 ins=cleaned_input("stock_code", "customer_id"), kinds=_KINDS)
def customer_network_edges(config: CustomerNetworkConfig, cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Customer projection edges: weight = Jaccard of the two customers' products, with shared products."""
    return _edges_output(graphs.customer_network_edges(
        cleaned, min_shared_products=config.min_shared_products, top_k=config.top_k, workers=config.workers))


@warehouse_table(keys.CUSTOMER_CENTRALITY, CustomerCentrality, group="network",
                 ins=keys.ins(edges=keys.CUSTOMER_NETWORK_EDGES), kinds=_KINDS)
def customer_centrality(config: CentralityConfig, edges: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Degree, betweenness and eigenvector centrality, component and community of every customer in the network."""
    scores, metadata = _centrality(config, edges)
    return dg.Output(scores, metadata={**metadata,
                                       "top_eigenvector": preview(scores.sort_values("eigenvector_centrality",
                                                                                     ascending=False), 10)})


product_network_edges_schema = schema_check(keys.PRODUCT_NETWORK_EDGES, ProductNetworkEdges)
product_centrality_schema = schema_check(keys.PRODUCT_CENTRALITY, ProductCentrality)
customer_network_edges_schema = schema_check(keys.CUSTOMER_NETWORK_EDGES, CustomerNetworkEdges)
customer_centrality_schema = schema_check(keys.CUSTOMER_CENTRALITY, CustomerCentrality)
