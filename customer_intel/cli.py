"""``customer-intel``: run the pipeline on your own data, generate the synthetic bank, run the demo, or open the UI.

    customer-intel run       train and/or score on a raw folder or S3 prefix, configured by flags or one TOML file
    customer-intel demo      generate data/ and materialise every asset for the last data day
    customer-intel generate  only write the synthetic bank (same flags as python -m customer_intel.synthetic)
    customer-intel ui        dagster dev on 127.0.0.1 (--host to change it) with DAGSTER_HOME under data/
    customer-intel serve     the scoring API on 127.0.0.1:8000 over data/'s champions and latest published day

``run`` and ``demo`` share one code path: they set the ``CUSTOMER_INTEL_*`` environment the Dagster
resources read, run ``training_job`` then ``scoring_job`` in process, and print every file the runs
published. ``run`` validates its configuration and the files' headers before anything runs (a
problem is one line on stderr, exit code 2, nothing written); a table that breaks a row-level rule
of the data contract fails its ingestion step during the run (exit code 1, the contract's message).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from customer_intel.resources.settings import ENV_PREFIX, NOT_CONFIGURED, TABLES
from customer_intel.serving.__main__ import add_arguments as serve_arguments
from customer_intel.synthetic.__main__ import add_arguments, generate
from customer_intel.table_names import training_frame

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_JOBS = ("training_job", "scoring_job")  # in order: scoring loads the champion training registered
# the keys of a `run --config` file (and of the flags): key -> environment variable the resources read
RUN_SETTINGS = {
    "raw": "RAW_DIR", "out": "DATA_DIR", "warehouse": "WAREHOUSE_DIR",
    "customers_duplicates": "CUSTOMERS_DUPLICATES", "max_abs_amount": "MAX_ABS_AMOUNT", "min_date": "MIN_DATE",
}
CONFIG_KEYS = (*RUN_SETTINGS, "tables", "columns")
PATH_KEYS = ("raw", "out", "warehouse")
COLUMNS_SYNTAX = 'TABLE.CONTRACT_COLUMN=EXPORT_COLUMN, e.g. --columns "transactions.customer_id=Customer Key"'


def prepare_environment(data_dir: Path) -> Path:
    """Point the pipeline at ``data_dir`` and give Dagster a persistent home inside it."""
    data_dir = data_dir.resolve()
    os.environ["CUSTOMER_INTEL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see STACK notes: busy-waiting threads on 2 cores
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = PROJECT_ROOT / "dagster.yaml"
    if instance_yaml.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(instance_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def write_example_dataset(dataset: str, out: Path) -> None:
    """Write a dataset that ships inside a package as contract tables under ``out/raw``."""
    from customer_intel.cltv.datasets import load_cdnow_transactions

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stale in raw.glob("*"):  # another dataset's tables would be discovered too
        stale.unlink()
    transactions = load_cdnow_transactions(dataset.removeprefix("cdnow_") if dataset != "cdnow" else "master")
    transactions.to_parquet(raw / "transactions.parquet", index=False)
    print(f"{dataset}: {transactions['customer_id'].nunique():,} customers, {len(transactions):,} transactions -> {raw}")


TRAINING_CONFIG_HELP = ("the training job's Dagster run config (YAML or JSON), merged over the defaults, e.g. "
                        "ops: {segmentation_models: {config: {methods: [kmeans]}}, churn_models: {config: {risk_threshold: 0.6}}}")


def merge_config(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, nested mappings merged key by key (a run config for the training job)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge_config(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_training_config(path: str | None) -> dict:
    """The training job's run config from a YAML or JSON file (``ops: {churn_models: {config: {...}}}``); {} without one."""
    if not path:
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RunConfigError(f"--training-config {path}: {exc}") from exc
    if not isinstance(loaded, dict) or set(loaded) - {"ops", "resources", "execution", "loggers"}:
        raise RunConfigError(f"--training-config {path}: expected a Dagster run config with an 'ops' mapping, e.g. "
                             "ops: {segmentation_models: {config: {methods: [kmeans]}}}")
    return loaded


def run_jobs(job_names: tuple[str, ...], partition: str | None, training_config: dict | None = None) -> tuple[int, list[str]]:
    """Execute the jobs in order on the Dagster instance of ``DAGSTER_HOME``; (exit code, run ids).

    The environment must be final: the definitions are imported here (the daily partitions read
    ``CUSTOMER_INTEL_PARTITIONS_START`` at import). A failed step prints its message and stops.
    """
    import dagster as dg

    from customer_intel.assets.partitions import SHARDS
    from customer_intel.definitions import defs

    run_ids: list[str] = []
    with dg.DagsterInstance.get() as instance:
        for job_name in job_names:
            if job_name == "scoring_job" and SHARDS > 1:  # a date is a chain of runs (customer_intel.jobs)
                from customer_intel.automation.chain import run_chain

                print(f"materialising ingest_job, {SHARDS} x shard_scoring_job, publish_job for partition {partition} ...", flush=True)
                chain = run_chain(instance, partition)
                links = [chain["ingest"], *chain["shards"], chain["publish"]]
                run_ids += [link["run_id"] for link in links if link]
                failed = [link["run_id"] for link in links if link and not link["success"]]
                if failed or chain["publish"] is None:
                    print(f"FAILED: the {SHARDS}-shard chain for {partition} (failed runs: {', '.join(failed) or 'none'}; see the UI)",
                          file=sys.stderr)
                    return 1, run_ids
                continue
            job = defs.resolve_job_def(job_name)
            partitioned = job.partitions_def is not None
            print(f"materialising {job_name}" + (f" for partition {partition}" if partitioned else "") + " ...", flush=True)
            result = job.execute_in_process(
                partition_key=partition if partitioned else None,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}, **({} if partitioned else training_config or {})},
            )
            run_ids.append(result.run_id)
            if not result.success:
                for event in result.all_events:
                    if event.event_type_value == "STEP_FAILURE":
                        print(f"FAILED {event.step_key}: {event.event_specific_data.error.message}", file=sys.stderr)
                return 1, run_ids
    return 0, run_ids


def print_outputs(run_ids: list[str], started: float, home: Path, ui_command: str) -> None:
    """Every data file the runs published (each table's ``_SUCCESS`` names it), MLflow and Dagster's home."""
    from customer_intel.resources import Settings, Warehouse
    from customer_intel.resources.exports import is_internal
    from customer_intel.resources.settings import redact_uri
    from customer_intel.resources.tables import MANIFEST

    store = Warehouse().store()
    print(f"\ndone in {time.perf_counter() - started:.1f} s. Outputs:")
    for obj in store.list():
        if obj.key.rsplit("/", 1)[-1] != MANIFEST or is_internal(obj.key):  # raw-id working copies of pseudonymised exports
            continue
        manifest = json.loads(store.get(obj.key))
        if manifest.get("run_id") in run_ids:
            print(f"  {store.uri(obj.key.rsplit('/', 1)[0] + '/' + manifest['data_file'])}")
    print(f"\nMLflow tracking URI (runs, registered champions): {redact_uri(Settings.from_env().mlflow_tracking_uri)}")
    print(f"Dagster home (runs, event log): {home}")
    print(f"Open the UI:  {ui_command}   (then http://127.0.0.1:3000)")


def write_model_cards(run_ids: list[str], data_dir: Path) -> list[Path]:
    """Each family's model card from the training run among ``run_ids`` (the card its gate completed in the comparison's
    MLflow run) as ``<data_dir>/model_cards/<family>.md``; a family these runs did not train (e.g. uplift without a
    campaign table, or a step that failed before its comparison) has none."""
    from customer_intel.assets import FAMILIES
    from customer_intel.modeling.card import MODEL_CARD_ARTIFACT
    from customer_intel.resources import ModelRegistry, Warehouse
    from customer_intel.table_names import models

    warehouse, registry, written = Warehouse(), ModelRegistry(), []
    for family in FAMILIES:
        name = family.spec.name
        manifest = warehouse.manifest(models(name))
        if not manifest or manifest.get("run_id") not in run_ids:
            continue
        table = warehouse.read(models(name))
        if "mlflow_parent_run_id" not in table.columns:
            continue
        path = data_dir / "model_cards" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(registry.read_text(str(table["mlflow_parent_run_id"].iloc[0]), MODEL_CARD_ARTIFACT))
        written.append(path)
    return written


def print_model_cards(run_ids: list[str]) -> None:
    try:
        cards = write_model_cards(run_ids, Path(os.environ[ENV_PREFIX + "DATA_DIR"]))
    except Exception as exc:  # e.g. the MLflow server is what failed the run: the run's own outcome is what matters
        print(f"\nModel cards not written: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return
    if cards:
        print("\nModel cards (one per family trained; also in MLflow as model_card.md):")
        for path in cards:
            print(f"  {path}")


def demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    training_config: dict = {}
    if args.dataset == "synthetic":
        generate(args)
        partition = args.partition or args.end_date
    else:  # CDNOW, with the split of Fader, Hardie & Lee (2005): 39 weeks of calibration, 39 of holdout
        from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END

        write_example_dataset(args.dataset, Path(args.out))
        os.environ.setdefault("CUSTOMER_INTEL_PARTITIONS_START", "1997-01-01")
        partition = args.partition or CDNOW_OBSERVATION_END
        training_config = {"ops": {training_frame("cltv"): {"config": {"cutoff": CDNOW_CALIBRATION_END, "horizon_days": 273}},
                                   training_frame("churn"): {"config": {"cutoff": CDNOW_CALIBRATION_END, "window_days": 273}}}}
    try:
        training_config = merge_config(training_config, load_training_config(args.training_config))
    except RunConfigError as exc:
        print(f"customer-intel demo: {exc}", file=sys.stderr)
        return 2
    home = prepare_environment(Path(args.out))
    code, run_ids = run_jobs(DEMO_JOBS, partition, training_config)
    print_model_cards(run_ids)  # a gate that refused is on its family's card too
    if code:
        return code
    print_outputs(run_ids, started, home, ".venv/bin/customer-intel ui")
    return 0


# --- customer-intel run ------------------------------------------------------------------------


class RunConfigError(ValueError):
    """The verb's configuration cannot be used: one line, exit code 2, nothing run or written."""


@dataclass
class Setting:
    value: str
    origin: str  # the flag or the config file key it came from


def _contract(table: str):
    from customer_intel.ingest import CONTRACTS

    return CONTRACTS[table]


def _column_key(table: str, column: str, where: str) -> str:
    """``columns.<table>.<column>`` after checking the table exists and has that column (profiles take any attribute)."""
    if table not in TABLES:
        raise RunConfigError(f"{where}: unknown table {table!r} (tables: {', '.join(TABLES)})")
    contract = _contract(table)
    names = [c.name for c in contract.columns]
    if not column or (not contract.keep_extra_columns and column not in names):
        raise RunConfigError(f"{where}: {table} has no contract column {column!r} (its columns: {', '.join(names)})")
    return f"columns.{table}.{column}"


def _text(value, key: str, where: str) -> str:
    """A file value as the environment variable's text: strings, a number for ``max_abs_amount``, a date for ``min_date``."""
    accepted = {"max_abs_amount": (int, float), "min_date": (date,)}.get(key, ())
    if isinstance(value, bool) or not isinstance(value, (str, *accepted)):
        raise RunConfigError(f"{where}: {key} must be {'a number' if key == 'max_abs_amount' else 'a string'}, got {value!r}")
    return str(value)


def _location(value: str, base: Path) -> str:
    """An s3:// URI or a switch (``none``) as given; a local path made absolute (relative to ``base``)."""
    if value.startswith("s3://") or value.strip().lower() in NOT_CONFIGURED:
        return value
    return str((base / value).resolve())


def read_config_file(path: Path) -> dict[str, Setting]:
    """The settings of a TOML file, flat (``raw``, ``tables.customers``, ``columns.transactions.ts``, ...).

    Relative paths in the file are relative to the file's folder. Unknown keys are an error naming the key.
    """
    import tomllib

    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise RunConfigError(f"--config {path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"--config {path}: not valid TOML ({exc})") from None
    base, where = path.resolve().parent, str(path)
    found: dict[str, Setting] = {}
    for key, value in document.items():
        if key not in CONFIG_KEYS:
            raise RunConfigError(f"{where}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        if key == "tables":
            if not isinstance(value, dict):
                raise RunConfigError(f"{where}: [tables] must be a table of paths, e.g. transactions = \"card_transactions.csv\"")
            for table, location in value.items():
                if table not in TABLES:
                    raise RunConfigError(f"{where}: unknown key 'tables.{table}' (tables: {', '.join(TABLES)})")
                found[f"tables.{table}"] = Setting(_location(_text(location, f"tables.{table}", where), base), f"tables.{table} in {where}")
        elif key == "columns":
            if not isinstance(value, dict) or not all(isinstance(m, dict) for m in value.values()):
                raise RunConfigError(f"{where}: [columns.<table>] must map contract columns to export columns, "
                                     'e.g. [columns.transactions] customer_id = "Customer Key"')
            for table, mapping in value.items():
                for column, source in mapping.items():
                    name = _column_key(table, column, f"{where}: key 'columns.{table}.{column}'")
                    found[name] = Setting(_text(source, name, where), f"[columns.{table}] in {where}")
        else:
            text = _text(value, key, where)
            found[key] = Setting(_location(text, base) if key in PATH_KEYS else text, f"{key} in {where}")
    return found


def _flag_settings(args: argparse.Namespace) -> dict[str, Setting]:
    """The settings given as flags, in the config file's flat keys (local paths relative to the working directory)."""
    found: dict[str, Setting] = {}
    for key in RUN_SETTINGS:
        value = getattr(args, key)
        if value is not None:
            flag = "--" + key.replace("_", "-")
            found[key] = Setting(_location(value, Path.cwd()) if key in PATH_KEYS else value, flag)
    for table in TABLES:
        value = getattr(args, table)
        if value is not None:
            found[f"tables.{table}"] = Setting(_location(value, Path.cwd()), f"--{table}")
    for item in args.columns or []:
        target, equals, source = item.partition("=")
        table, dot, column = target.strip().partition(".")
        if not equals or not dot or not source.strip():
            raise RunConfigError(f"--columns {item!r}: expected {COLUMNS_SYNTAX}")
        found[_column_key(table, column.strip(), f"--columns {item!r}")] = Setting(source.strip(), "--columns")
    return found


def apply_environment(settings: dict[str, Setting]) -> dict[str, str]:
    """Set the ``CUSTOMER_INTEL_*`` variables the resources read; returns variable (and ``columns.<table>.<column>``)
    -> where its value came from.

    A table's column mapping given to ``run`` replaces ``CUSTOMER_INTEL_<TABLE>_COLUMNS``; anything not
    given keeps its value from the environment.
    """
    origins: dict[str, str] = {}

    def put(name: str, value: str, origin: str) -> None:
        os.environ[ENV_PREFIX + name] = value
        origins[ENV_PREFIX + name] = origin

    for key, name in RUN_SETTINGS.items():
        if key in settings:
            put(name, settings[key].value, settings[key].origin)
    for table in TABLES:
        if f"tables.{table}" in settings:
            put(f"{table.upper()}_PATH", settings[f"tables.{table}"].value, settings[f"tables.{table}"].origin)
        prefix = f"columns.{table}."
        mapping = {k.removeprefix(prefix): s for k, s in settings.items() if k.startswith(prefix)}
        if mapping:
            origin = " and ".join(sorted({s.origin for s in mapping.values()}))
            put(f"{table.upper()}_COLUMNS", json.dumps({k: s.value for k, s in mapping.items()}), origin)
            origins.update({prefix + k: s.origin for k, s in mapping.items()})
    return origins


def _explained(message: str, origins: dict[str, str]) -> str:
    """``message`` with where the variables it names (or the paths it names) were set: a flag or a config file key."""
    def mentioned(var: str) -> bool:
        path = os.environ.get(var, "") if var.endswith("_PATH") else ""  # "<path>: no such file or folder" names the value
        return var in message or (path.lower() not in NOT_CONFIGURED and path in message)

    named = [f"{var.removeprefix(ENV_PREFIX)} from {origin}" for var, origin in origins.items() if var.startswith(ENV_PREFIX) and mentioned(var)]
    return message + (f" [{'; '.join(named)}]" if named else "")


@dataclass
class TableSource:
    """One raw table as the run will read it: its files, rows per file and the dates it spans."""

    name: str
    files: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    state: str = ""  # "" when read; else why it is off
    mapping: dict[str, str] = field(default_factory=dict)
    first_day: date | None = None
    last_day: date | None = None
    date_column: str | None = None


DATE_COLUMNS = {"transactions": "ts", "customers": "valid_from", "campaigns": None}


def _inspect_table(source, contract, origins: dict[str, str], settings) -> TableSource:
    """Read ``contract``'s table as ingestion will (location, files, headers, mapping); its rows and date range."""
    from customer_intel.engine import connect, ident

    raw = source.read(contract)
    table = TableSource(contract.name, mapping=dict(raw.column_mapping))
    if raw.absent:
        table.state = "off (switched off)" if source.switched_off(contract.name) else f"off (not found in {source.raw_location})"
        return table
    mapping_var = f"{ENV_PREFIX}{contract.name.upper()}_COLUMNS"
    date_column = DATE_COLUMNS[contract.name]
    con = connect()
    try:
        ranges = []
        for view in raw.open_files(con):
            if not view.source_columns:  # an empty file: the ingestion's non_empty rule reports it
                table.files.append(view.path)
                table.rows.append(0)
                continue
            present = ", ".join(repr(c) for c in view.source_columns)
            for target, column in raw.column_mapping.items():
                if column not in view.source_columns:
                    mapped_by = origins.get(f"columns.{contract.name}.{target}", mapping_var)
                    raise RunConfigError(f"{contract.name}: column {column!r} (mapped to {target} by {mapped_by}) is not in "
                                         f"{view.path}; its columns: {present}")
            for column in contract.required_columns:
                if column not in view.columns:
                    raise RunConfigError(f"{contract.name}: {view.path} has no column {column!r} (required by the data contract); "
                                         f"its columns: {present}. Name the export's column with --columns "
                                         f"{contract.name}.{column}=EXPORT_COLUMN")
            table.files.append(view.path)
            table.rows.append(int(con.execute(f"SELECT count(*) FROM {view.name}").fetchone()[0]))
            if date_column and date_column in view.columns:
                c = ident(date_column)
                typed = (f"TRY_CAST(NULLIF(trim({c}), '') AS TIMESTAMPTZ)" if view.columns[date_column].upper() == "VARCHAR"
                         else f"TRY_CAST({c} AS TIMESTAMPTZ)")
                # values outside [min_date, now] are refused by ingestion; they must not stretch the partitions
                bounded = (f"CASE WHEN {typed} >= TIMESTAMPTZ '{settings.min_date} 00:00:00+00' AND {typed} <= now() "
                           f"THEN {typed} END")
                ranges.append(con.execute(f"SELECT CAST(min({bounded}) AS DATE), CAST(max({bounded}) AS DATE) FROM {view.name}").fetchone())
    finally:
        con.close()
    days = [d for r in ranges for d in r if d is not None]
    if days:
        table.first_day, table.last_day, table.date_column = min(days), max(days), date_column
    return table


def inspect_sources(origins: dict[str, str]) -> dict[str, TableSource]:
    """Validate the settings and every table's files and headers, exactly as the resources will read them."""
    from customer_intel.ingest import CONTRACTS, RawSourceError
    from customer_intel.resources import RawDataSource
    from customer_intel.resources.settings import ConfigurationError, Settings, export_id_salt

    try:
        settings = Settings.from_env()
        export_id_salt()  # a salt too short to use fails here, not after training, when the first export is written
        source = RawDataSource()
        try:
            source.limits()
        except ConfigurationError as exc:  # the one bound Settings does not check itself
            raise ConfigurationError(f"{ENV_PREFIX}MAX_ABS_AMOUNT: {exc}") from None
        tables = {name: _inspect_table(source, CONTRACTS[name], origins, settings) for name in TABLES}
    except (ConfigurationError, RawSourceError) as exc:
        raise RunConfigError(_explained(str(exc), origins)) from None
    except Exception as exc:  # S3: no credentials, no bucket, endpoint down
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError):
            raise RunConfigError(f"the raw location cannot be read from S3: {exc}") from None
        raise
    if tables["transactions"].state and tables["customers"].state:
        raise RunConfigError(f"nothing to read: transactions is {tables['transactions'].state} and customers is "
                             f"{tables['customers'].state}; give --raw, --transactions or --customers")
    return tables


def _score_date(requested: str | None, tables: dict[str, TableSource]) -> tuple[str, str]:
    """The partition to score and why: the requested date, else the last data day (at most the last complete day)."""
    from customer_intel.resources.settings import partitions_start

    last_complete = datetime.now(UTC).date() - timedelta(days=1)  # a daily partition exists once its day is over
    if requested:
        try:
            day = date.fromisoformat(requested)
        except ValueError:
            raise RunConfigError(f"--score {requested!r} is not a date (YYYY-MM-DD)") from None
        if day > last_complete:
            raise RunConfigError(f"--score {day}: the daily partitions end at {last_complete} (a day is a partition once it is over)")
        reason = "as requested"
    else:
        table = next((t for t in (tables["transactions"], tables["customers"]) if t.last_day), None)
        day = table.last_day if table else last_complete
        reason = f"the last day of {table.name}.{table.date_column}" if table else "no dated table: the last complete day"
        if day > last_complete:
            day, reason = last_complete, f"{reason} is today: the last complete day"
    start = os.environ.get(ENV_PREFIX + "PARTITIONS_START")
    if start and str(day) < partitions_start():
        raise RunConfigError(f"the scored date {day} is before {ENV_PREFIX}PARTITIONS_START={start}, the first daily partition")
    return str(day), reason


def print_plan(tables: dict[str, TableSource], jobs: tuple[str, ...], partition: str | None, reason: str) -> None:
    from customer_intel.resources import RawDataSource, Settings, Warehouse
    from customer_intel.resources.settings import export_id_salt, redact_uri

    settings = Settings.from_env()
    print("customer-intel run reads:")
    for table in tables.values():
        if table.state:
            print(f"  {table.name:<13} {table.state}")
            continue
        for path, rows in zip(table.files, table.rows):
            print(f"  {table.name:<13} {path}  ({rows:,} rows)")
        if table.mapping:
            print(f"  {'':<13} columns: " + ", ".join(f"{k} <- {v!r}" for k, v in table.mapping.items()))
        if table.last_day:
            print(f"  {'':<13} {table.date_column}: {table.first_day} .. {table.last_day}")
    print(f"  customers duplicates: {RawDataSource().limits().duplicate_keys}")
    print(f"writes to: {Warehouse().location}  (MLflow: {redact_uri(settings.mlflow_tracking_uri)})")
    if export_id_salt():
        print(f"exports: customer ids replaced by keyed pseudonyms ({ENV_PREFIX}EXPORT_ID_SALT is set)")
    steps = [job + (f" for {partition} ({reason})" if job == "scoring_job" else "") for job in jobs]
    print("runs: " + ", then ".join(steps), flush=True)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    scoring = args.score is not None
    jobs = DEMO_JOBS if args.train == scoring else ("training_job",) if args.train else ("scoring_job",)
    try:
        settings = read_config_file(Path(args.config)) if args.config else {}
        settings.update(_flag_settings(args))  # flags override the file
        origins = apply_environment(settings)
        tables = inspect_sources(origins)
        partition, reason = _score_date(args.score, tables) if "scoring_job" in jobs else (None, "")
        training_config = load_training_config(args.training_config)
    except RunConfigError as exc:
        print(f"customer-intel run: {exc}", file=sys.stderr)
        return 2
    print_plan(tables, jobs, partition, reason)
    if args.check:
        print("--check: the configuration and the files' headers are valid; nothing was run")
        return 0
    first_days = [t.first_day for t in tables.values() if t.first_day] + ([date.fromisoformat(partition)] if partition else [])
    if first_days:
        os.environ.setdefault(ENV_PREFIX + "PARTITIONS_START", str(min(first_days)))  # read when the definitions are imported
    from customer_intel.resources import Settings

    home = prepare_environment(Settings.from_env().data_dir)
    code, run_ids = run_jobs(jobs, partition, training_config)
    if "training_job" in jobs:
        print_model_cards(run_ids)  # a gate that refused is on its family's card too
    if code:
        return code
    start = os.environ.get(ENV_PREFIX + "PARTITIONS_START")
    print_outputs(run_ids, started, home, (f"{ENV_PREFIX}PARTITIONS_START={start} " if start else "")
                  + f"customer-intel ui --out {os.environ[ENV_PREFIX + 'DATA_DIR']}")
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.toml", help="a TOML file with the keys below (raw, out, warehouse, [tables], "
                        "[columns.<table>], customers_duplicates, max_abs_amount, min_date); flags override it")
    parser.add_argument("--raw", metavar="DIR|s3://bucket/prefix", help="the folder or prefix where transactions, customers and campaigns "
                        "(.csv, .csv.gz, .parquet, or a folder of them) are found by name (default: DATA_DIR/raw)")
    parser.add_argument("--out", metavar="DATA_DIR", help="data folder: Dagster home, MLflow store, default warehouse (default: data)")
    parser.add_argument("--warehouse", metavar="DIR|s3://bucket/prefix", help="where the output tables go (default: DATA_DIR/warehouse)")
    for table in TABLES:
        parser.add_argument(f"--{table}", metavar="PATH|none", help=f"the {table} file or folder, or none to switch it off "
                            "(default: found by name in the raw folder)")
    parser.add_argument("--columns", action="append", metavar="TABLE.CONTRACT_COLUMN=EXPORT_COLUMN",
                        help='map an export column to a contract column, e.g. "transactions.customer_id=Customer Key" (repeatable)')
    parser.add_argument("--customers-duplicates", choices=("refuse", "keep_last"),
                        help="a customer key on more than one row of customers: refuse (default) or keep the last row per key")
    parser.add_argument("--max-abs-amount", metavar="X", help="amounts further from zero are refused (default 1e9)")
    parser.add_argument("--min-date", metavar="YYYY-MM-DD", help="earlier timestamps are placeholders, refused (default 1980-01-01)")
    parser.add_argument("--train", action="store_true", help="run the training job")
    parser.add_argument("--score", nargs="?", const="", metavar="DATE",
                        help="run the scoring job for DATE (default: the last day of transactions, else of customers.valid_from, "
                        "at most yesterday); neither --train nor --score: train, then score")
    parser.add_argument("--training-config", metavar="FILE.yaml", default=None, help=TRAINING_CONFIG_HELP)
    parser.add_argument("--check", action="store_true", help="validate the configuration and the files' headers, print what would be read, stop")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui(args: argparse.Namespace) -> int:
    prepare_environment(Path(args.out))
    if args.host not in LOOPBACK:
        print(f"customer-intel ui: listening on {args.host}: the Dagster UI has no login, so anyone who reaches this address "
              "can launch runs and read every table's metadata; put an authenticating proxy in front of it", file=sys.stderr)
    command = ["dagster", "dev", "-h", args.host, "-p", str(args.port), "-w", str(PROJECT_ROOT / "workspace.yaml")]
    executable = Path(sys.executable).with_name("dagster")
    command[0] = str(executable) if executable.exists() else "dagster"
    print(" ".join(command), flush=True)
    # a non-interactive parent can leave SIGINT/SIGTERM ignored; dagster dev must stop on them
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(command[0], command) if executable.exists() else os.execvp(command[0], command)
    return 0


def serve(args: argparse.Namespace) -> int:
    """The scoring API over ``--out`` (the folder the demo or ``run`` wrote)."""
    from customer_intel.serving.__main__ import serve as serve_api

    if args.out is not None:
        os.environ["CUSTOMER_INTEL_DATA_DIR"] = str(Path(args.out).resolve())
    return serve_api(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="customer-intel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train and/or score on your own raw folder or S3 prefix (flags or a TOML file)",
                           description="Train, score a date, or both, on a raw folder or S3 prefix. Settings come from the flags, "
                           "then --config FILE.toml, then the CUSTOMER_INTEL_* environment; they are validated (and the files' "
                           "headers read) before anything runs. Exit codes: 0 done, 1 a step failed, 2 the configuration cannot be used.")
    add_run_arguments(p_run)
    p_run.set_defaults(func=run)
    p_demo = sub.add_parser("demo", help="generate the synthetic bank and materialise every asset")
    add_arguments(p_demo)
    p_demo.add_argument("--partition", default=None, help="partition date to score (default: the last day of data)")
    p_demo.add_argument("--dataset", choices=("synthetic", "cdnow", "cdnow_sample"), default="synthetic",
                        help="synthetic bank (default), or the CDNOW log shipped with lifetimes (FHL split); use its own --out")
    p_demo.add_argument("--training-config", metavar="FILE.yaml", default=None, help=TRAINING_CONFIG_HELP)
    p_demo.set_defaults(func=demo)
    p_gen = sub.add_parser("generate", help="write the synthetic bank")
    add_arguments(p_gen)
    p_gen.set_defaults(func=lambda a: (generate(a), 0)[1])
    p_ui = sub.add_parser("ui", help="start dagster dev on 127.0.0.1 over the data folder")
    p_ui.add_argument("--out", default="data", help="data folder (default %(default)s)")
    p_ui.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default %(default)s: this machine only; "
                      "the UI has no login)")
    p_ui.add_argument("--port", type=int, default=3000)
    p_ui.set_defaults(func=ui)
    p_serve = sub.add_parser("serve", help="start the scoring API on 127.0.0.1 over the data folder's champions and tables",
                             description="The scoring API (customer_intel.serving) over the champions in the data folder's MLflow "
                             "store and its latest published day. Needs CUSTOMER_INTEL_API_PASSWORD, or CUSTOMER_INTEL_API_DEV=1 on "
                             "127.0.0.1; exit code 2 with the reason otherwise.")
    p_serve.add_argument("--out", default=None, help="data folder of the demo or run (default $CUSTOMER_INTEL_DATA_DIR, else data)")
    serve_arguments(p_serve)
    p_serve.set_defaults(func=serve)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
