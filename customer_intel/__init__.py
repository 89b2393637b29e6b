"""customer_intel: customer analytics for banks as Dagster assets (see README.md)."""
