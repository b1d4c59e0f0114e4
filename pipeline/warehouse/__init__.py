"""What is built over the warehouse tables: analyst views (marts), SQL validation of the schemas, the report and the run summary.

Nothing in this package imports dagster.
"""
