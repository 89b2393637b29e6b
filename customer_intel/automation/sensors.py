"""Retraining sensors: new raw files on the landing prefix, and drift of live features from the training frame."""

import json

import dagster as dg

from customer_intel.automation.shards import waiting_for_chain
from customer_intel.jobs import training_job
from customer_intel.modeling.split import LEGACY_PART_NAMES, REFIT, SPLIT_COLUMN, TEST, VALIDATION
from customer_intel.monitoring import LandingCursor, drift_report
from customer_intel.monitoring.landing import READ_FILES_METADATA
from customer_intel.resources import DriftPolicy, ModelRegistry, RawDataSource, Warehouse
from customer_intel.resources.settings import TABLES, landing_interval_seconds
from customer_intel.resources.tables import IncompletePartitionError
from customer_intel.table_names import raw_table

TAG_PREFIX = "customer_intel"
MAX_TAG_FILES = 5
VALIDATION_PART_NAMES = [VALIDATION, *(old for old, new in LEGACY_PART_NAMES.items() if new == VALIDATION)]
RAW_ASSET_KEYS = frozenset(dg.AssetKey(raw_table(table)) for table in TABLES)
TRAINING_RUNS_LOOKED_AT = 20  # the first tick's look back for a successful training run that ingested


def _files_read(instance: dg.DagsterInstance, run_id: str) -> dict[str, str] | None:
    """location -> content tag of every raw file ``run_id``'s ingestion read; None when it ingested nothing
    (a run that ingested before ingestion recorded its files gives {}: all its files count as new)."""
    read, ingested = {}, False
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None or materialization.asset_key not in RAW_ASSET_KEYS:
            continue
        ingested = True
        recorded = materialization.metadata.get(READ_FILES_METADATA)
        read.update(recorded.value if recorded is not None else {})
    return read if ingested else None


def last_training_read(instance: dg.DagsterInstance) -> tuple[str, dict[str, str]] | None:
    """(run id, location -> tag of every raw file it read) of the latest successful ``training_job`` run on
    ``instance``; a re-execution that did not ingest is followed back to the run it re-executes, which did.
    None when nothing has trained here yet (or the recent successful runs did not ingest)."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=training_job.name, statuses=[dg.DagsterRunStatus.SUCCESS]),
                             limit=TRAINING_RUNS_LOOKED_AT)
    for run in runs:
        current = run
        while current is not None:
            read = _files_read(instance, current.run_id)
            if read is not None:
                return current.run_id, read
            current = instance.get_run_by_id(current.parent_run_id) if current.parent_run_id else None
    return None


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=landing_interval_seconds(),  # definition-time
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch training when a raw table file the ingestion assets read (under the raw folder or S3 "
    "prefix, or an explicit table path) is new or changed; the cursor keeps each file's key and content tag "
    "(S3 ETag; size + mtime of a local file), never a timestamp. First tick (no cursor): the files the latest "
    "successful training_job run on this instance read (tags its ingestion recorded) count as seen, so opening "
    "the UI on data the CLI or the demo just trained on launches nothing; a file added or changed since, and "
    "every file when nothing has trained here yet (a fresh deployment with data but no model), launches training.",
)
def raw_landing_sensor(context: dg.SensorEvaluationContext, raw_data: RawDataSource):
    if waiting := waiting_for_chain(context):  # the files count as new on the tick after the chain
        return waiting
    files = raw_data.landed_files()
    start, baseline_note = LandingCursor.parse(context.cursor), ""
    if not context.cursor:  # first tick: what this instance already trained on is not new
        trained = last_training_read(context.instance)
        if trained is not None:
            run_id, read = trained
            start = LandingCursor.baseline(read)
            already = sum(read.get(f.uri) == f.etag for f in files)
            baseline_note = f"; first tick: {already} already read by training run {run_id}"
            context.log.info(f"first tick: {len(read)} raw file(s) read by the last successful training run {run_id} count as seen")
    changed, cursor = start.advance((f.uri, f.etag) for f in files)
    if not changed:
        return dg.SensorResult(skip_reason=f"no new or changed raw files ({len(files)} seen under {raw_data.raw_location}{baseline_note})",
                               cursor=cursor.serialize())
    names = [uri for uri, _ in changed]
    shown = ", ".join(names[:MAX_TAG_FILES]) + (f" (+{len(names) - MAX_TAG_FILES} more)" if len(names) > MAX_TAG_FILES else "")
    context.log.info(f"{len(changed)} new or changed raw file(s): {shown}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=cursor.run_key(changed), tags={f"{TAG_PREFIX}/trigger": "landing", f"{TAG_PREFIX}/landed_files": shown})],
        cursor=cursor.serialize(),
    )


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch training when the latest published customer_features partition drifts from a family's "
    "training frame (the drift_policy resource: PSI per feature above its threshold); the PSI table goes in the run tags.",
)
def feature_drift_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse, drift_policy: DriftPolicy,
                         model_registry: ModelRegistry):
    if waiting := waiting_for_chain(context):
        return waiting
    features_asset, reference_asset = drift_policy.live_asset, drift_policy.reference_asset
    partitions = warehouse.published_partitions(features_asset)
    training = warehouse.manifest(reference_asset)
    if not partitions or training is None:
        return dg.SkipReason(f"nothing to compare yet: {len(partitions)} published {features_asset} partitions, "
                             f"{reference_asset} {'published' if training else 'not published'}")
    # The reference should be the frame the champion was judged on. The warehouse keeps only the
    # latest frame, which differs after a training run that promoted nothing (gate refused, no
    # champion): monitoring goes on against it, and every tick and launch says so.
    judged_on = model_registry.champion_training_frame_sha256(drift_policy.reference_family)
    if judged_on in (None, "unknown"):
        reference_note = f"{reference_asset} (the champion's frame is not recorded)"
    elif judged_on == training["sha256"]:
        reference_note = f"{reference_asset}, the frame the {drift_policy.reference_family} champion was judged on"
    else:
        reference_note = (f"the latest {reference_asset} (sha256 {training['sha256'][:12]}), NOT the frame the registered "
                          f"{drift_policy.reference_family} champion was judged on ({judged_on[:12]}): its last training run promoted nothing")
        context.log.warning(f"drift reference: {reference_note}")
    latest = partitions[-1]
    # every published shard of the date (one, unsharded); a rewritten partition or shard (re-run, backfill)
    # or a new training frame is compared again
    live_sha = "".join((warehouse.manifest(features_asset, latest, shard) or {}).get("sha256", "")[:16]
                       for shard in warehouse.published(features_asset)[latest])
    evaluated = f"{latest}:{live_sha}@{training['sha256'][:16]}"
    if context.cursor == evaluated:
        return dg.SkipReason(f"{features_asset} {latest} was already compared with this training frame")
    try:
        reference = warehouse.read(reference_asset)
        live = warehouse.read_date(features_asset, latest)
    except IncompletePartitionError as exc:  # a rewrite started between listing and reading: next tick
        return dg.SkipReason(str(exc))
    if SPLIT_COLUMN in reference.columns:
        # the features the registered champion was fitted on: the refit rows (all the data) when the
        # family refits its champion, else the test rows (where it was last refitted), else the validation rows
        parts = set(reference[SPLIT_COLUMN])
        chosen = [REFIT] if REFIT in parts else [TEST] if TEST in parts else VALIDATION_PART_NAMES
        reference = reference.loc[reference[SPLIT_COLUMN].isin(chosen)]
    report = drift_report(reference, live, drift_policy.compared_features, drift_policy.threshold)
    context.update_cursor(evaluated)
    summary = f"{features_asset} {latest} vs {reference_asset}: max PSI {report.max_psi:.3f} (threshold {report.threshold})"
    context.log.info(f"{summary}\n{report.markdown()}")
    if not report.drifted:
        return dg.SkipReason(f"{summary}: no drift; reference: {reference_note}")
    return dg.RunRequest(
        run_key=f"drift-{evaluated}",
        tags={
            f"{TAG_PREFIX}/trigger": "drift",
            f"{TAG_PREFIX}/drift_partition": latest,
            f"{TAG_PREFIX}/drifted_features": ",".join(report.drifted),
            f"{TAG_PREFIX}/psi": json.dumps(report.as_dict()),
            f"{TAG_PREFIX}/psi_threshold": str(report.threshold),
            f"{TAG_PREFIX}/drift_reference": reference_note,
        },
    )
