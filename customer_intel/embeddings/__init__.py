"""Customer2Vec embeddings (pure domain code): token bags from the feature engine and a PV-DBOW model with inference.

In progress (issue 22): the FAISS index, similar customers, the lookalike audience and the daily
``customer_embeddings`` asset on the shared lifecycle come next.
"""
