"""The real-time scoring API: the batch champions, one customer at a time (FastAPI)."""
