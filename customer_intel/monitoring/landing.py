"""The landing sensor's memory: which raw files it has seen, keyed on location + content tag.

A timestamp watermark misses or repeats files that share a timestamp (S3's LastModified has
one-second resolution; copies may keep old modification times), so the cursor keeps the tag
(S3 ETag, or size + mtime for local files) of every file it has seen: a new key or a new tag
is new data, however its timestamp compares.

The first cursor is not empty when this instance has already trained: ingestion records the tag of
every file it read (``READ_FILES_METADATA``), and the sensor starts from the files its latest
successful training run read (``LandingCursor.baseline``), so opening the UI on data a model was
just trained on launches nothing, while a file added or changed since still does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

READ_FILES_METADATA = "read_files"  # metadata of an ingested raw table: location -> content tag of every file read


@dataclass(frozen=True)
class LandingCursor:
    seen: dict[str, str] = field(default_factory=dict)  # location -> content tag
    launches: int = 0  # how many sets of new files this cursor has launched runs for

    @classmethod
    def parse(cls, cursor: str | None) -> LandingCursor:
        if not cursor:
            return cls()
        state = json.loads(cursor)
        return cls(dict(state["seen"]), int(state.get("launches", 0)))

    @classmethod
    def baseline(cls, read_files: Mapping[str, str]) -> LandingCursor:
        """The first cursor of a sensor on an instance whose training already read ``read_files``
        (location -> tag): exactly those versions count as seen; any other file, or another tag of
        one of them, is new. An empty mapping (no training yet) is the empty cursor: everything is new."""
        return cls(dict(read_files))

    def serialize(self) -> str:
        return json.dumps({"seen": self.seen, "launches": self.launches}, sort_keys=True, separators=(",", ":"))

    def advance(self, files: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], LandingCursor]:
        """(new or changed (location, tag) pairs, the cursor after seeing ``files``).

        Files that disappeared are forgotten, so a file that comes back counts as new.
        """
        current = dict(files)
        changed = sorted((loc, tag) for loc, tag in current.items() if self.seen.get(loc) != tag)
        return changed, LandingCursor(current, self.launches + (1 if changed else 0))

    def run_key(self, changed: list[tuple[str, str]]) -> str:
        """The run key of the launch this (advanced) cursor recorded: unique per launch, so a
        file rolled back to earlier bytes launches again, and stable if a tick is retried."""
        digest = hashlib.sha256(json.dumps(sorted(changed)).encode()).hexdigest()[:12]
        return f"landing-{self.launches}-{digest}"
