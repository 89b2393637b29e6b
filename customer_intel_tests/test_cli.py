"""The README's entry points, run as a user runs them: as processes."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from customer_intel.cli import main
from customer_intel.synthetic import generate_bank
from customer_intel_tests.conftest import free_port, published, restore_signals

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return env


LIGHT = PROJECT / "customer_intel_tests" / "fixtures" / "light_training.yaml"  # fewer candidates per family: the suite's budget


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The README's first command's entry point, as a process with a clean environment (the light training config)."""
    done = subprocess.run(
        [str(BIN / "customer-intel"), "demo", "--training-config", str(LIGHT), *args],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_demo_generates_data_and_materialises_every_asset(tmp_path):
    out = tmp_path / "data"
    done = run_demo(tmp_path, "--customers", "300", "--out", str(out))
    scored = out / "warehouse" / "scored_customers" / "date=2026-06-30"
    assert (scored / "_SUCCESS").is_file()
    scored_frame = pd.read_parquet(published(scored))
    assert len(scored_frame) == 300
    assert scored_frame["cltv_model"].str.startswith("customer_intel_cltv v1").all()  # training ran first
    assert str(published(scored)) in done.stdout
    assert "customer-intel ui" in done.stdout
    # one model card per family, written where the README links them from, each completed by its gate
    cards = {path.stem: path.read_text() for path in (out / "model_cards").glob("*.md")}
    assert set(cards) == {"cltv", "segmentation", "churn", "uplift", "embeddings"}
    for family, card in cards.items():
        assert card.startswith(f"# Model card: {family}") and f"The blocking check `{family}_champion_not_worse` **passed**" in card
        assert str((out / "model_cards" / f"{family}.md").resolve()) in done.stdout
    # nothing a user would read as an error: no warnings, no progress bars, no failed signature inference
    noise = [line for line in (done.stdout + done.stderr).splitlines()
             if any(word in line for word in ("WARNING", "Warning", "warning:", "Failed to infer", "Downloading artifacts", "Traceback"))]
    assert not noise, noise[:5]


def test_code_location_validates_like_dagster_dev_loads_it(tmp_path):
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")],
        cwd=PROJECT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


EXPECTED_ASSETS = {"raw_transactions", "raw_customers", "raw_campaigns", "customer_features", "scored_customers",
                   "cltv_training_frame", "cltv_models", "cltv_champion", "cltv_scores",
                   "segmentation_training_frame", "segmentation_models", "segmentation_champion", "segment_assignments",
                   "churn_training_frame", "churn_models", "churn_champion", "churn_scores",
                   "uplift_training_frame", "uplift_models", "uplift_champion", "uplift_scores", "campaign_targets",
                   "embeddings_training_frame", "embeddings_models", "embeddings_champion", "customer_embeddings", "lookalike_audience"}


def test_dagster_dev_serves_every_asset_with_description_group_and_kinds(tmp_path):
    port = free_port()
    log = open(tmp_path / "dagster_dev.log", "w")  # noqa: SIM115 -- the server writes to it until the finally below closes it
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT / "workspace.yaml")],
        cwd=PROJECT, env=clean_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=restore_signals,
    )
    query = json.dumps({"query": "{ assetNodes { assetKey { path } description groupName kinds } }"}).encode()
    nodes = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    nodes = json.load(response)["data"]["assetNodes"]
                if len(nodes) == len(EXPECTED_ASSETS):
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    assert nodes is not None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
    by_name = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert set(by_name) == EXPECTED_ASSETS
    assert by_name["scored_customers"]["groupName"] == "scoring"
    assert set(by_name["raw_transactions"]["kinds"]) == {"duckdb", "parquet"}
    assert all(n["description"] for n in nodes)


def test_demo_runs_the_whole_pipeline_on_the_cdnow_sample(tmp_path):
    out = tmp_path / "cdnow"
    run_demo(tmp_path, "--dataset", "cdnow_sample", "--out", str(out))
    frame = pd.read_parquet(published(out / "warehouse" / "cltv_training_frame"))
    test = frame[frame["split"] == "test"]  # FHL's split: calibration to 1997-09-30, 39 weeks that only report
    assert len(test) == 2_357 and str(test["as_of"].iloc[0].date()) == "1997-09-30" and set(test["holdout_days"]) == {273}
    validation = frame[frame["split"] == "validation"]  # chosen inside the calibration period: 136 days, half the history
    assert str(validation["as_of"].iloc[0].date()) == "1997-05-17" and set(validation["holdout_days"]) == {136}
    scored = pd.read_parquet(published(out / "warehouse" / "scored_customers" / "date=1998-06-30"))
    assert len(scored) == 2_357 and scored["cltv_model"].str.startswith("customer_intel_cltv v1").all()
    churn = pd.read_parquet(published(out / "warehouse" / "churn_training_frame"))  # churn on the same split, a 39-week window
    assert set(churn.loc[churn["split"] == "test", "split_horizon_days"]) == {273}
    assert scored["churn_model"].str.startswith("customer_intel_churn v1").all() and (scored["churn_horizon_days"] == 273).all()


# --- customer-intel run on a bank-shaped export -----------------------------------------------

BANK_EXAMPLE = PROJECT / "docs" / "examples" / "bank_export.toml"
BANK_COLUMNS = {"customer_id": "Customer Key", "ts": "Txn Timestamp", "amount": "Amount EUR", "category": "MCC Group",
                "channel": "Channel"}
UPDATED = 20  # customers whose profile the export repeats (an appended update with a new credit limit)


@pytest.fixture(scope="module")
def bank_export(tmp_path_factory) -> Path:
    """A bank's CSV export in its own column names, as docs/examples/bank_export.toml describes it: 300 customers,
    ISO timestamps with Z, and a profile file that appends an updated row for the first 20 customers."""
    folder = tmp_path_factory.mktemp("bank") / "bank_export"
    folder.mkdir()
    frames = generate_bank(n_customers=300, seed=5, end_date="2026-06-30").frames()
    transactions = frames["transactions"].rename(columns=BANK_COLUMNS)
    transactions["Txn Timestamp"] = transactions["Txn Timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    transactions.to_csv(folder / "transactions.csv", index=False)
    customers = frames["customers"].rename(columns={"customer_id": "Customer Key", "Avg_Credit_Limit": "Credit Limit"})
    updates = customers.iloc[:UPDATED].assign(**{"Credit Limit": customers["Credit Limit"].iloc[:UPDATED] + 1000})
    pd.concat([customers, updates]).to_csv(folder / "customers.csv", index=False)
    return folder


def customer_intel_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "customer-intel"), "run", *args], cwd=tmp_path, env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=600)


def test_run_on_a_bank_export_refuses_repeated_keys_then_keeps_the_last_row(tmp_path, bank_export):
    out = tmp_path / "data"
    example = ("--config", str(BANK_EXAMPLE), "--raw", str(bank_export), "--out", str(out), "--training-config", str(LIGHT))
    refused = customer_intel_run(tmp_path, *example)
    assert refused.returncode == 1, refused.stderr[-3000:]
    failure = next(line for line in refused.stderr.splitlines() if line.startswith("FAILED raw_customers"))
    assert "rule 'unique_customer_ids'" in failure
    assert "CUSTOMER_INTEL_CUSTOMERS_DUPLICATES=keep_last" in failure and "--customers-duplicates keep_last" in failure
    assert not (out / "warehouse" / "raw_customers").exists()

    done = customer_intel_run(tmp_path, *example, "--customers-duplicates", "keep_last")
    assert done.returncode == 0, done.stderr[-3000:]
    last_day = str(pd.read_csv(bank_export / "transactions.csv")["Txn Timestamp"].max())[:10]
    assert f"scoring_job for {last_day} (the last day of transactions.ts)" in done.stdout
    scored = out / "warehouse" / "scored_customers" / f"date={last_day}"
    assert len(pd.read_parquet(published(scored))) == 300
    customers = pd.read_parquet(published(out / "warehouse" / "raw_customers"))
    assert len(customers) == 300 and customers["customer_id"].is_unique
    exported = pd.read_csv(bank_export / "customers.csv").drop_duplicates("Customer Key", keep="last")
    assert customers.set_index("customer_id")["Avg_Credit_Limit"].to_dict() == exported.set_index("Customer Key")["Credit Limit"].to_dict()
    for table in (scored, out / "warehouse" / "raw_transactions", out / "warehouse" / "cltv_training_frame"):
        assert f"  {published(table)}\n" in done.stdout
    assert f"MLflow tracking URI (runs, registered champions): sqlite:///{out / 'mlflow' / 'mlflow.db'}" in done.stdout


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    """``main(["run", ...])`` in this process, in ``tmp_path``, with the environment restored afterwards."""
    monkeypatch.chdir(tmp_path)
    with mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_"))]:
            del os.environ[name]
        yield lambda *args: main(["run", *args])


def test_run_check_prints_the_files_it_would_read_and_runs_nothing(in_process, capsys, tmp_path, bank_export):
    assert in_process("--config", str(BANK_EXAMPLE), "--raw", str(bank_export), "--out", str(tmp_path / "data"), "--check") == 0
    stdout = capsys.readouterr().out
    assert f"  transactions  {bank_export / 'transactions.csv'}  (" in stdout
    assert f"  customers     {bank_export / 'customers.csv'}  (320 rows)" in stdout
    assert "  campaigns     off (switched off)" in stdout
    assert "columns: customer_id <- 'Customer Key', ts <- 'Txn Timestamp', amount <- 'Amount EUR'" in stdout
    assert "runs: training_job, then scoring_job for 2026-06-30 (the last day of transactions.ts)" in stdout
    assert stdout.rstrip().endswith("--check: the configuration and the files' headers are valid; nothing was run")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("case", ["columns_syntax", "columns_unknown", "config_key", "raw_missing", "mapped_missing", "min_date",
                                  "training_config"])
def test_run_refuses_an_unusable_configuration_in_one_line_before_anything_runs(case, in_process, capsys, tmp_path, bank_export):
    config = tmp_path / "bank.toml"
    config.write_text('raw = "export"\nraw_dir = "export"\n')
    run_config = tmp_path / "training.yaml"
    run_config.write_text("segmentation_models:\n  config:\n    methods: [kmeans]\n")  # the 'ops' level forgotten
    args, expected = {
        "columns_syntax": (["--columns", "transactions.customer_id"],
                           "--columns 'transactions.customer_id': expected TABLE.CONTRACT_COLUMN=EXPORT_COLUMN"),
        "columns_unknown": (["--columns", "transactions.custmer_id=Customer Key"],
                            "--columns 'transactions.custmer_id=Customer Key': transactions has no contract column 'custmer_id'"),
        "config_key": (["--config", str(config)], f"{config}: unknown key 'raw_dir' (known: raw, out, warehouse,"),
        "raw_missing": (["--raw", str(tmp_path / "nowhere")],
                        f"the raw folder {tmp_path / 'nowhere'} does not exist (CUSTOMER_INTEL_RAW_DIR / raw_data.raw_dir); "
                        "nothing was read or written [RAW_DIR from --raw]"),
        "mapped_missing": (["--config", str(BANK_EXAMPLE), "--raw", str(bank_export), "--columns", "transactions.amount=Amount USD"],
                           f"transactions: column 'Amount USD' (mapped to amount by --columns) is not in "
                           f"{bank_export / 'transactions.csv'}; its columns: 'Customer Key', "),
        "min_date": (["--raw", str(bank_export), "--min-date", "2026-13-01"],
                     "CUSTOMER_INTEL_MIN_DATE='2026-13-01' is not a date (YYYY-MM-DD) [MIN_DATE from --min-date]"),
        "training_config": (["--config", str(BANK_EXAMPLE), "--raw", str(bank_export), "--training-config", str(run_config)],
                            f"--training-config {run_config}: expected a Dagster run config with an 'ops' mapping"),
    }[case]
    assert in_process(*args, "--out", str(tmp_path / "data")) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("customer-intel run: " + expected), captured.err
    assert captured.err.count("\n") == 1 and not captured.out
    assert not (tmp_path / "data").exists()
