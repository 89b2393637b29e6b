"""The scoring API's audit log: every recorded line reaches the object store exactly once, through batches, restarts,
SIGKILLed writers, an S3 outage, torn last lines and concurrent writers."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from customer_intel.resources.storage import LocalObjectStore, S3ObjectStore
from customer_intel.serving.audit import AuditLog
from customer_intel_tests.conftest import free_port

KEY = re.compile(r"^(?:audit_log/)?date=(\d{4}-\d{2}-\d{2})/segment-\d{8}T\d{12}-[A-Za-z0-9_.-]+-\d+-\d+\.jsonl$")
REPO = Path(__file__).resolve().parents[2]


def entry(i: int, **extra) -> dict:
    """An entry shaped like the API's (the log does not care; it stores what it is given)."""
    return {"request_id": f"req-{i:05d}", "time": f"2026-07-01T12:00:{i % 60:02d}+00:00", "caller": "analyst",
            "endpoint": "/v1/churn", "inputs_sha256": f"{i:064x}", "outputs": {"customer_id": i, "churn_probability": i / 1000},
            "model_versions": {"churn": "customer_intel_churn v3 (logistic)"}, "latency_ms": 1.5, "status": 200, **extra}


def shipped(store, prefix: str = "audit_log") -> dict[str, list[dict]]:
    """Every object under ``prefix``: key -> its lines parsed (each must be valid JSON)."""
    return {obj.key: [json.loads(line) for line in store.get(obj.key).decode().splitlines()] for obj in store.list(prefix)}


def all_lines(objects: dict[str, list[dict]]) -> list[dict]:
    return [line for lines in objects.values() for line in lines]


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        time.sleep(0.02)
    return value


def local_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write_segment(folder: Path, name: str, lines: list[dict], tail: bytes = b"") -> Path:
    path = folder / name
    path.write_bytes(b"".join(json.dumps(line, sort_keys=True).encode() + b"\n" for line in lines) + tail)
    return path


def test_batches_are_sealed_and_shipped_to_a_local_store_exactly_once(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    log = AuditLog(tmp_path / "audit", store, batch_lines=7, interval_seconds=3600).start()
    entries = [entry(i) for i in range(30)]
    for item in entries:
        log.record(item)
    # four full batches were sealed; the thread ships each soon after (woken, not on its hour-long tick)
    wait_for(lambda: log.stats()["shipped_objects"] == 4)
    assert local_files(tmp_path / "audit") == [f"current-{os.getpid()}.jsonl"]
    assert log.stats()["pending_lines"] == 2
    log.close()

    objects = shipped(store)
    assert len(objects) == 5
    today = datetime.now(UTC).date().isoformat()
    assert all(KEY.match(key)[1] == today for key in objects), sorted(objects)
    assert sorted(len(lines) for lines in objects.values()) == [2, 7, 7, 7, 7]
    assert sorted(all_lines(objects), key=lambda line: line["request_id"]) == entries
    assert local_files(tmp_path / "audit") == []
    assert log.stats() == {"recorded": 30, "shipped_lines": 30, "shipped_objects": 5, "pending_lines": 0, "last_error": None,
                           "location": store.uri("audit_log"), "shipping": True}


def test_batches_are_shipped_to_s3_exactly_once(tmp_path, s3_bucket):
    resource, bucket = s3_bucket
    store = S3ObjectStore(resource.get_client(), bucket, "")
    entries = [entry(i, note="line\nbreak \u00e9") for i in range(25)]  # a newline inside a value stays escaped in one line
    with AuditLog(tmp_path / "audit", store, batch_lines=10, interval_seconds=3600) as log:
        for item in entries:
            log.record(item)
    objects = shipped(store)
    assert sorted(len(lines) for lines in objects.values()) == [5, 10, 10]
    assert all(KEY.match(key) for key in objects), sorted(objects)
    assert sorted(all_lines(objects), key=lambda line: line["request_id"]) == entries
    assert log.stats()["location"] == f"s3://{bucket}/audit_log"
    assert local_files(tmp_path / "audit") == []


def test_close_ships_the_partial_batch_and_record_after_close_raises(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    log = AuditLog(tmp_path / "audit", store).start()  # defaults: 500 lines, 30 s
    for i in range(3):
        log.record(entry(i))
    assert shipped(store) == {}
    log.close()
    log.close()  # idempotent
    assert all_lines(shipped(store)) == [entry(0), entry(1), entry(2)]
    with pytest.raises(RuntimeError, match=r"closed: record\(\) after close\(\)"):
        log.record(entry(3))
    assert log.stats()["recorded"] == 3
    assert not log._thread.is_alive()


def test_a_quiet_current_file_is_sealed_and_shipped_after_interval_seconds(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    log = AuditLog(tmp_path / "audit", store, prefix="", batch_lines=500, interval_seconds=0.2).start()
    try:
        log.record(entry(1))
        log.record(entry(2))
        objects = wait_for(lambda: shipped(store, ""))  # no flush: the thread seals the aged file itself
        assert list(objects.values()) == [[entry(1), entry(2)]]
        assert next(iter(objects)).startswith("date=")  # no leading "/" from an empty prefix
    finally:
        log.close()


def test_restart_ships_a_dead_writers_current_file_and_leftover_segments(tmp_path, caplog):
    folder, store = tmp_path / "audit", LocalObjectStore(tmp_path / "store")
    folder.mkdir()
    # a writer SIGKILLed mid-batch: its current file, no lock holder; one sealed segment it never shipped; and one it
    # shipped but died before deleting (already in the store: shipping it again overwrites the same key)
    write_segment(folder, "current-4194000.jsonl", [entry(0), entry(1), entry(2)])
    write_segment(folder, "segment-20260102T030405000006-oldhost-4194000-1.jsonl", [entry(3), entry(4)])
    shipped_once = write_segment(folder, "segment-20260102T030405000007-oldhost-4194000-2.jsonl", [entry(5)])
    store.put(f"audit_log/date=2026-01-02/{shipped_once.name}", shipped_once.read_bytes())

    with caplog.at_level(logging.INFO, logger="customer_intel.serving.audit"):
        log = AuditLog(folder, store, interval_seconds=3600).start()
    assert local_files(folder) == []  # start() itself shipped everything
    assert "sealed 1 current file(s) left by dead writers: current-4194000.jsonl -> segment-" in caplog.text
    log.close()

    objects = shipped(store)
    assert sorted(all_lines(objects), key=lambda line: line["request_id"]) == [entry(i) for i in range(6)]
    assert sorted(k for k in objects if "2026-01-02" in k) == [
        "audit_log/date=2026-01-02/segment-20260102T030405000006-oldhost-4194000-1.jsonl",
        "audit_log/date=2026-01-02/segment-20260102T030405000007-oldhost-4194000-2.jsonl"]
    assert log.stats() | {"location": None} == {"recorded": 0, "shipped_lines": 6, "shipped_objects": 3, "pending_lines": 0,
                                                "last_error": None, "location": None, "shipping": True}


def test_a_sigkilled_writer_loses_no_line_and_a_live_writers_file_is_left_alone(tmp_path):
    folder, store = tmp_path / "audit", LocalObjectStore(tmp_path / "store")
    child_code = (
        "import sys, time\n"
        "from customer_intel.serving.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1], None, batch_lines=4).start()\n"
        "for i in range(10):\n"
        "    log.record({'i': i})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", child_code, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        # while the writer lives, its current file (2 lines) is its own: a second process ships only the 2 sealed segments
        with AuditLog(folder, store, interval_seconds=3600) as log:
            pass
        assert log.stats()["shipped_lines"] == 8
        assert local_files(folder) == [f"current-{child.pid}.jsonl"]
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    with AuditLog(folder, store, interval_seconds=3600) as log:
        pass
    assert log.stats()["shipped_lines"] == 2
    assert sorted(line["i"] for line in all_lines(shipped(store))) == list(range(10))
    assert local_files(folder) == []


def test_a_dead_predecessor_with_our_pid_is_sealed_before_we_append(tmp_path, caplog):
    """Containers reuse pids: a leftover current-<our pid>.jsonl must not get our lines after its torn last line."""
    folder, store = tmp_path / "audit", LocalObjectStore(tmp_path / "store")
    folder.mkdir()
    leftover = write_segment(folder, f"current-{os.getpid()}.jsonl", [entry(0)], tail=b'{"request_id": "req-000')
    size = leftover.stat().st_size
    log = AuditLog(folder, store, interval_seconds=3600)
    with caplog.at_level(logging.WARNING, logger="customer_intel.serving.audit"):
        log.record(entry(1))  # before start(): the leftover is sealed first, our line goes to a fresh file
        log.start()
        log.close()
    assert f"current-{os.getpid()}.jsonl ({size} bytes) was left by a dead process with this pid" in caplog.text
    assert sorted(len(lines) for lines in shipped(store).values()) == [1, 1]
    assert sorted(all_lines(shipped(store)), key=lambda line: line["request_id"]) == [entry(0), entry(1)]


def test_a_truncated_trailing_line_is_dropped_with_a_warning(tmp_path, caplog):
    folder, store = tmp_path / "audit", LocalObjectStore(tmp_path / "store")
    folder.mkdir()
    tail = b'{"caller": "analyst", "endp'
    torn = write_segment(folder, "segment-20260301T000000000000-h-1-1.jsonl", [entry(0), entry(1), entry(2)], tail=tail)
    write_segment(folder, "segment-20260301T000000000001-h-1-2.jsonl", [], tail=b'{"caller": "ana')  # only a torn line
    with caplog.at_level(logging.WARNING, logger="customer_intel.serving.audit"):
        log = AuditLog(folder, store, interval_seconds=3600).start()
        log.close()
    assert f"{torn.name} ends with an incomplete line ({len(tail)} bytes;" in caplog.text
    assert "dropped, the 3 complete lines ship" in caplog.text
    assert "dropped, the 0 complete lines ship" in caplog.text
    assert shipped(store) == {f"audit_log/date=2026-03-01/{torn.name}": [entry(0), entry(1), entry(2)]}
    assert local_files(folder) == []
    assert (log.stats()["shipped_lines"], log.stats()["shipped_objects"]) == (3, 1)


def test_a_segment_another_process_is_shipping_is_left_to_it(tmp_path):
    folder, store = tmp_path / "audit", LocalObjectStore(tmp_path / "store")
    folder.mkdir()
    busy = write_segment(folder, "segment-20260301T000000000000-h-1-1.jsonl", [entry(0)])
    with open(busy, "rb") as other:  # another open file description: to flock it is another holder, as another process is
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        log = AuditLog(folder, store, interval_seconds=3600).start()
        assert shipped(store) == {} and local_files(folder) == [busy.name]
        assert log.stats()["pending_lines"] == 1
    assert log.flush() == [f"audit_log/date=2026-03-01/{busy.name}"]
    log.close()
    assert all_lines(shipped(store)) == [entry(0)]


def test_s3_down_keeps_the_segment_and_flush_ships_it_when_s3_is_back(tmp_path):
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=5))
    client.create_bucket(Bucket="audit-outage")
    store = S3ObjectStore(client, "audit-outage", "serving")
    log = AuditLog(tmp_path / "audit", store, batch_lines=2, interval_seconds=3600).start()
    try:
        log.record(entry(0))
        log.record(entry(1))
        wait_for(lambda: log.stats()["shipped_objects"] == 1)

        server.stop()
        log.record(entry(2))
        log.record(entry(3))  # sealed; the thread's PUT fails; record() does not notice
        error = wait_for(lambda: log.stats()["last_error"])
        assert "EndpointConnectionError" in error and "Could not connect to the endpoint URL" in error
        assert [name.startswith("segment-") for name in local_files(tmp_path / "audit")] == [True]
        assert log.stats()["pending_lines"] == 2
        log.record(entry(4))
        assert log.flush() == []  # still down: both segments kept
        assert log.stats()["pending_lines"] == 3 and log.stats()["shipped_objects"] == 1

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        keys = log.flush()
        assert len(keys) == 2 and all(KEY.match(key.removeprefix("serving/")) for key in keys), keys
        assert log.stats()["last_error"] is None
        assert sorted(all_lines(shipped(store, "audit_log")), key=lambda line: line["request_id"]) == [entry(i) for i in range(5)]
        assert local_files(tmp_path / "audit") == []
    finally:
        log.close()
        server.stop()


def test_concurrent_records_from_eight_threads_ship_every_line_once(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    log = AuditLog(tmp_path / "audit", store, batch_lines=50, interval_seconds=0.05).start()
    barrier = threading.Barrier(8)

    def writer(thread: int):
        barrier.wait()
        for i in range(200):
            log.record({"thread": thread, "i": i, "payload": "x" * (i % 97)})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()

    objects = shipped(store)  # json.loads of every line: each is whole
    pairs = sorted((line["thread"], line["i"]) for line in all_lines(objects))
    assert pairs == [(thread, i) for thread in range(8) for i in range(200)]
    assert all(len(lines) <= 50 for lines in objects.values())
    stats = log.stats()
    assert (stats["recorded"], stats["shipped_lines"], stats["shipped_objects"], stats["pending_lines"]) == (1600, 1600, len(objects), 0)


def test_without_a_store_lines_stay_local(tmp_path):
    folder = tmp_path / "audit"
    log = AuditLog(folder, None, batch_lines=2).start()
    for i in range(5):
        log.record(entry(i))
    assert log.flush() == []
    stats = log.stats()
    assert (stats["shipping"], stats["location"], stats["pending_lines"], stats["shipped_lines"]) == (False, str(folder.resolve()), 5, 0)
    log.close()
    segments = local_files(folder)
    assert len(segments) == 3 and all(name.startswith("segment-") for name in segments)
    lines = [json.loads(line) for name in segments for line in (folder / name).read_text().splitlines()]
    assert sorted(lines, key=lambda line: line["request_id"]) == [entry(i) for i in range(5)]
