"""What the API scores with: every family's champion by MLflow alias, and the latest published day's features.

``load_serving_models`` builds one immutable ``ServingModels`` (at start-up and on ``POST /reload``);
the app swaps the whole object, so a request sees either the old models and day or the new ones,
never a mix. The champions are the batch's: ``ModelRegistry.load_champion`` (by version, as the
nightly scoring step does), and the day is the one ``scored_customers`` was last published for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from customer_intel.churn.family import CHURN
from customer_intel.cltv.family import CLTV
from customer_intel.embeddings.family import EMBEDDINGS
from customer_intel.embeddings.index import VectorIndex, build_index
from customer_intel.features.rfm import channel_slug
from customer_intel.modeling.family import ModelFamily
from customer_intel.resources.model_registry import ModelRegistry, RegisteredChampion
from customer_intel.resources.warehouse import Warehouse
from customer_intel.segmentation.family import SEGMENTATION
from customer_intel.table_names import CUSTOMER_EMBEDDINGS, CUSTOMER_FEATURES, SCORED_CUSTOMERS
from customer_intel.uplift.family import UPLIFT

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (CLTV, SEGMENTATION, CHURN, UPLIFT, EMBEDDINGS)}
VECTOR_COLUMN = "embedding_vector"
CHANNEL_PREFIX = "channel_share_"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedDay:
    """The latest day with both ``customer_features`` and ``scored_customers`` published: its features by customer,
    and its embeddings indexed (when ``customer_embeddings`` was published that day too)."""

    date: str
    features: pd.DataFrame  # one row per customer, in the table's order
    positions: dict[str, int]  # customer_id -> row of features
    channels: tuple[str, ...]  # the channel slugs of its channel_share_* columns
    index: VectorIndex | None = None  # over the day's embedding vectors
    vectors: np.ndarray | None = None  # the day's vectors, in index order
    scored_by: dict[str, str] = field(default_factory=dict)  # family -> the model label(s) in the day's published scores

    @property
    def embeddings_model(self) -> str | None:
        """The label of the model that embedded the day (None without published embeddings)."""
        return self.scored_by.get("embeddings")

    def rows(self, customer_id: str) -> pd.DataFrame | None:
        position = self.positions.get(customer_id)
        return None if position is None else self.features.iloc[[position]].reset_index(drop=True)


@dataclass(frozen=True)
class ServingModels:
    champions: dict[str, RegisteredChampion]  # only the families that have one
    missing: dict[str, str]  # family -> why it has no champion here
    published: PublishedDay | None
    published_note: str
    loaded_at: str
    load_seconds: float
    registry: str
    warehouse: str
    families: dict[str, ModelFamily] = field(default_factory=lambda: dict(FAMILIES))

    def stale(self) -> list[str]:
        """The families whose champion is not the model that scored the published day (promoted since): answers by id follow
        the champion, and differ from the published table until the next scoring run."""
        if self.published is None:
            return []
        return [f"{name}: the champion is {champion.label}, the published day {self.published.date} was scored by "
                f"{self.published.scored_by[name]}" for name, champion in self.champions.items()
                if self.published.scored_by.get(name) not in (None, champion.label)]

    def describe(self) -> list[dict]:
        """GET /models: each family's champion (name, version, candidate, trained at, cutoff) or why there is none."""
        out = []
        for name in self.families:
            champion = self.champions.get(name)
            if champion is None:
                out.append({"family": name, "registered_model": self.families[name].registered_model, "version": None,
                            "candidate": None, "trained_at": None, "cutoff": None, "note": self.missing.get(name)})
                continue
            created = getattr(champion.version, "creation_timestamp", None)
            out.append({
                "family": name, "registered_model": champion.registered_model, "version": str(champion.version.version),
                "candidate": champion.candidate, "label": champion.label, "cutoff": champion.cutoff,
                "horizon_days": champion.horizon_days, "run_id": champion.version.run_id,
                "trained_at": datetime.fromtimestamp(created / 1000, UTC).isoformat() if created else None,
                "published_day_scored_by": self.published.scored_by.get(name) if self.published else None, "note": None,
            })
        return out


def _published_day(warehouse: Warehouse) -> tuple[PublishedDay | None, str]:
    scored = set(warehouse.published_partitions(SCORED_CUSTOMERS))
    days = sorted(scored & set(warehouse.published_partitions(CUSTOMER_FEATURES)))
    if not days:
        return None, (f"no day with both {CUSTOMER_FEATURES} and {SCORED_CUSTOMERS} published in {warehouse.location}: "
                      "customers can be scored from their transactions only (run the scoring job)")
    day = days[-1]
    features = warehouse.read_date(CUSTOMER_FEATURES, day).reset_index(drop=True)
    features["customer_id"] = features["customer_id"].astype("string")
    positions = {c: i for i, c in enumerate(features["customer_id"].tolist())}
    channels = tuple(c[len(CHANNEL_PREFIX):] for c in features.columns if c.startswith(CHANNEL_PREFIX))
    index = vectors = None
    note = f"{day}: {len(features):,} customers"
    manifest = warehouse.manifest(SCORED_CUSTOMERS, day) or {}
    model_columns = {name: f"{family.prefix}_model" for name, family in FAMILIES.items()}
    present = [c for c in model_columns.values() if c in manifest.get("columns", ())]
    labels = warehouse.read_date(SCORED_CUSTOMERS, day, columns=present) if present else pd.DataFrame()
    scored_by = {name: ", ".join(map(str, labels[column].dropna().unique())) for name, column in model_columns.items()
                 if column in labels and labels[column].notna().any()}
    if day in warehouse.published_partitions(CUSTOMER_EMBEDDINGS):
        embeddings = warehouse.read_date(CUSTOMER_EMBEDDINGS, day)
        have = embeddings[VECTOR_COLUMN].notna() if VECTOR_COLUMN in embeddings else pd.Series(False, index=embeddings.index)
        if have.any():
            rows = embeddings.loc[have]
            vectors = np.vstack([np.asarray(v, dtype=np.float32) for v in rows[VECTOR_COLUMN]])
            ids = rows["customer_id"].astype(str).to_numpy()
            started = time.perf_counter()
            index = build_index(vectors, ids)  # the batch's own index builder: exact up to 200,000 customers, else tuned HNSW
            if "embedding_model" in rows and rows["embedding_model"].notna().any():
                scored_by["embeddings"] = str(rows["embedding_model"].dropna().iloc[0])
            note += f"; {len(ids):,} embeddings indexed ({index.kind}, recall@10 {index.recall_at_10:.3f}) in {time.perf_counter() - started:.1f} s"
    return PublishedDay(day, features, positions, channels, index, vectors, scored_by), note


def load_serving_models(registry: ModelRegistry | None = None, warehouse: Warehouse | None = None) -> ServingModels:
    """Every family's champion and the latest published day; a family without a champion is listed with the reason.

    An unreachable registry raises (the service must not start, or reload, into "no champions")."""
    registry = registry or ModelRegistry()
    warehouse = warehouse or Warehouse()
    started = time.perf_counter()
    champions, missing = {}, {}
    for name, family in FAMILIES.items():
        champion = registry.load_champion(name)
        if champion is None:
            missing[name] = f"no {family.registered_model}@champion in {registry.display_uri}: run the training job"
        else:
            champions[name] = champion
    published, note = _published_day(warehouse)
    seconds = time.perf_counter() - started
    log.info("loaded %d champions (%s) and %s in %.1f s", len(champions), ", ".join(c.label for c in champions.values()) or "none",
             note, seconds)
    return ServingModels(champions, missing, published, note, datetime.now(UTC).isoformat(timespec="seconds"), round(seconds, 2),
                         registry.display_uri, warehouse.location)


def channel_vocabulary(published_slugs, channels_seen) -> list[str]:
    """The channel values to build raw-mode features with: every published column's channel (a request's spelling of it when
    it has one, so its share counts), then the request's other channels. A scorer then finds every column it was fitted on."""
    seen = [c for c in dict.fromkeys(channels_seen) if c]
    by_slug = {channel_slug(c): c for c in seen}
    vocabulary = [by_slug.get(s, s) for s in published_slugs]
    return vocabulary + [c for c in seen if channel_slug(c) not in set(published_slugs)]
