"""Results: run records and folders, the results database, tables, findings, report, plots, published numbers."""
