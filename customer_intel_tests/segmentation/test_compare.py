"""The segmentation comparison CLI: profile mode on a file of the public credit-card schema, transactional mode on the bank."""

import pandas as pd
import pytest

from customer_intel.segmentation import compare
from customer_intel.segmentation.family import SegmentationSplitError, build_segmentation_split, segmentation_split_from_inputs


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory):
    return compare.write_profile_file(tmp_path_factory.mktemp("profile") / "customers.csv", rows=660, seed=42)


def test_the_profile_file_has_the_public_schema_and_repeated_keys(profile_file):
    table = pd.read_csv(profile_file)
    assert list(table.columns) == compare.PUBLIC_COLUMNS and len(table) == 660
    assert table["Customer Key"].duplicated().sum() == 5
    assert pd.read_csv(profile_file.with_suffix(".truth.csv"))["Customer Key"].nunique() == 655


def test_profile_mode_compares_on_the_raw_attributes_and_names_the_segments(profile_file, capsys):
    compare.main(["--customers-file", str(profile_file), "--methods", "kmeans,gmm,spectral", "--seed", "42"])
    out = capsys.readouterr().out
    assert "(655 customers; 5 repeated keys kept their last row)" in out
    assert "input space: profile features (Avg_Credit_Limit, Total_Credit_Cards, Total_visits_bank, Total_visits_online, " \
           "Total_calls_made); log1p on the columns skewed beyond 1 (Avg_Credit_Limit" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "kind" not in line}
    assert {"kmeans", "gmm", "spectral"} <= set(rows)
    champion = out.split("champion: ")[1].split(" ")[0]
    assert champion in rows
    names = [line.split(":")[0].split(" ", 2)[2] for line in out.splitlines() if line.startswith("- ")]
    assert 3 <= len(names) <= 8 and len(set(names)) == len(names) and all("limit" in n for n in names)


def test_a_column_map_reads_any_export_and_a_missing_column_is_named(profile_file, tmp_path, capsys):
    renamed = pd.read_csv(profile_file).rename(columns={"Customer Key": "cust", "Avg_Credit_Limit": "Limit"})
    path = tmp_path / "export.csv"
    renamed.to_csv(path, index=False)
    compare.main(["--customers-file", str(path), "--id-column", "cust", "--column-map", "Limit=Avg_Credit_Limit", "--methods", "kmeans"])
    assert "champion: kmeans" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"export.csv: missing columns \['Avg_Credit_Limit'\]"):
        compare.main(["--customers-file", str(path), "--id-column", "cust", "--methods", "kmeans"])


def test_the_transactional_feature_set_is_selectable_and_scored_against_the_personas(capsys):
    args = ["--customers", "1500", "--feature-set", "transactional", "--methods", "kmeans,gmm", "--seed", "3"]
    with pytest.raises(SystemExit, match=r"(?s)no candidate has a finite silhouette and meets stability >= 0.8.*\| kmeans +\| centroid"):
        compare.main(args)  # RFM blurs the personas: no segmentation is stable enough, and the table says so
    compare.main([*args, "--min-stability", "0.5"])
    out = capsys.readouterr().out
    assert "input space: transactional features (recency, frequency, monetary, T, avg_ticket" in out
    header = next(line for line in out.splitlines() if "persona_ari" in line)
    kmeans = next(line for line in out.splitlines() if line.startswith("| kmeans"))
    ari = float(kmeans.split("|")[[cell.strip() for cell in header.split("|")].index("persona_ari")])
    assert 0 < ari <= 1


def test_the_split_names_what_it_cannot_build(small_frames):
    customers = small_frames["customers"]
    profile_only = segmentation_split_from_inputs({"raw_customers": customers}, cutoff="2026-06-30")
    assert profile_only.fit["segmentation_feature_set"].iloc[0] == "profile" and len(profile_only.validation) == round(0.25 * len(customers))
    with pytest.raises(SegmentationSplitError, match="the transactional feature set needs transactional features"):
        segmentation_split_from_inputs({"raw_customers": customers}, cutoff="2026-06-30", feature_set="transactional")
    with pytest.raises(SegmentationSplitError, match="unknown feature set 'rfm'"):
        build_segmentation_split(profile_only.fit, "rfm")
    with pytest.raises(SegmentationSplitError, match="30 customers: too few"):
        build_segmentation_split(profile_only.fit.head(30), "profile")
    with pytest.raises(SegmentationSplitError, match="neither raw_transactions nor raw_customers has rows"):
        segmentation_split_from_inputs({"raw_customers": customers.head(0)})
