import itertools

import numpy as np
import pandas as pd

from customer_intel.features import SEGMENT_NAMES, add_rfm_scores, quintile_score, segment_name


def test_quintiles_split_evenly_and_ties_share_a_score():
    assert quintile_score(pd.Series(range(1, 11))).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    tied = quintile_score(pd.Series([0, 0, 0, 0, 0, 0, 5, 6, 7, 8]))
    assert tied.iloc[:6].nunique() == 1 and tied.iloc[0] == 2
    assert quintile_score(pd.Series([1, 2, 3, 4, 5]), higher_is_better=False).tolist() == [5, 4, 3, 2, 1]


def test_every_cell_of_the_grid_has_exactly_one_name():
    pairs = np.array(list(itertools.product(range(1, 6), repeat=2)))
    names = segment_name(pairs[:, 0], pairs[:, 1])
    assert set(names) == set(SEGMENT_NAMES)
    lookup = dict(zip(map(tuple, pairs), names))
    assert lookup[(5, 5)] == "Champions" and lookup[(1, 1)] == "Lost" and lookup[(2, 1)] == "Hibernating"
    assert lookup[(1, 5)] == "Can't Lose Them" and lookup[(5, 1)] == "New Customers"


def test_add_rfm_scores_orders_recency_the_right_way():
    frame = pd.DataFrame({"recency": [1, 300], "frequency": [40, 0], "monetary": [90.0, 5.0]})
    scored = add_rfm_scores(frame)
    assert scored["r_score"].tolist() == [5, 3] and scored["rfm_segment"].tolist()[0] == "Champions"
    assert scored["rfm_score"].tolist()[0] == "555"
