"""Random draws that belong to the customer, not to the frame: one generator per block of customers.

A scorer that draws at random (posterior simulation, predictive intervals) must give a customer
the same draws whichever customers are scored beside it: the nightly run of the whole bank, a
scoring shard, a backfill. ``by_block`` seeds one generator per customer block
(``engine.customer_blocks``: whole blocks make a shard) and walks each block's customers in id
order, so a customer's draws depend only on the seed and its block's customers in the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def by_block(customer_ids: Sequence, seed: int, draw: Callable[[np.random.Generator, np.ndarray], tuple[np.ndarray, ...]]):
    """``draw(rng, rows)`` for every block's rows (positions into ``customer_ids``), put back in the ids' order.

    ``draw`` returns arrays whose first axis is the rows; the results are arrays over every customer."""
    from customer_intel.engine import customer_blocks

    ids = np.asarray([str(i) for i in customer_ids], dtype=object)
    blocks = customer_blocks(ids)
    order = np.lexsort((ids, blocks))
    out: list[np.ndarray] | None = None
    for rows in np.split(order, np.flatnonzero(np.diff(blocks[order])) + 1):
        if not len(rows):
            continue
        parts = draw(np.random.default_rng([int(seed), int(blocks[rows[0]])]), rows)
        if out is None:
            out = [np.empty((len(ids), *p.shape[1:]), dtype=p.dtype) for p in parts]
        for target, part in zip(out, parts):
            target[rows] = part
    return tuple(out) if out is not None else ()
