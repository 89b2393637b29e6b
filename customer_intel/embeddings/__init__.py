"""Customer embeddings (pure domain code): Customer2Vec over token bags from the feature engine, a FAISS index, lookalikes.

- ``tokens``: each customer's token bag as of a day (category, channel, amount and gap buckets);
- ``customer2vec``: PV-DBOW in PyTorch with negative sampling, early stopping and deterministic inference;
- ``frames``: the rows an embedding is fitted on and scores (features + the bag as JSON) and the family's split;
- ``candidates``, ``scorer``, ``family``: the embeddings family of the shared lifecycle;
- ``index``: exact, IVF or HNSW search tuned to a recall target; ``similar_customers``;
- ``lookalike``: seed queries and the lookalike audience; ``evaluate``: neighbour metrics; ``compare``: the CLI.
"""
