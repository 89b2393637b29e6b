"""Random draws that belong to the customer: the same whoever is scored beside it and in whatever order."""

import numpy as np
import pytest

from customer_intel.engine import CUSTOMER_BLOCKS, customer_blocks, shard_predicate
from customer_intel.modeling.draws import by_block


def _draw(rng, rows):
    return rng.normal(size=(len(rows), 3)), rng.integers(0, 10**9, size=len(rows))


def test_a_customers_draws_depend_on_its_block_not_on_the_frame():
    ids = [f"C{i:07d}" for i in range(2000)]
    normal, integers = by_block(ids, 7, _draw)
    assert normal.shape == (2000, 3) and integers.shape == (2000,)
    order = np.random.default_rng(0).permutation(2000)
    shuffled_normal, _ = by_block([ids[i] for i in order], 7, _draw)
    np.testing.assert_array_equal(shuffled_normal, normal[order])
    # the customers of a block subset of the blocks (what a scoring shard holds) draw the same
    blocks = customer_blocks(ids)
    kept = np.flatnonzero(blocks % 2 == 1)
    np.testing.assert_array_equal(by_block([ids[i] for i in kept], 7, _draw)[0], normal[kept])
    assert not np.array_equal(by_block(ids, 8, _draw)[0], normal)  # the seed still matters
    assert by_block([], 7, _draw) == ()


def test_blocks_are_the_sql_key_and_shards_are_whole_blocks():
    blocks = customer_blocks(["C0000001", "C0000002", "C0000001"])
    assert blocks[0] == blocks[2] and ((blocks >= 0) & (blocks < CUSTOMER_BLOCKS)).all()
    assert shard_predicate(0, 1) == "TRUE" and shard_predicate(1, 4).endswith("% 65536 AS BIGINT) % 4 = 1")
    with pytest.raises(ValueError, match="at most 65,536 shards"):
        shard_predicate(0, CUSTOMER_BLOCKS + 1)
