"""Thin Dagster wiring, one module per domain; the logic lives in the domain packages.

``FAMILIES`` lists every model family on the shared lifecycle (``factory.champion_assets``); the
training job, the daily scores and ``scored_customers`` are built from it.
"""

from customer_intel.assets.churn import churn_assets
from customer_intel.assets.cltv import cltv_assets
from customer_intel.assets.embeddings import embeddings_assets
from customer_intel.assets.segmentation import segmentation_assets
from customer_intel.assets.uplift import uplift_assets

FAMILIES = [cltv_assets, segmentation_assets, churn_assets, uplift_assets, embeddings_assets]
