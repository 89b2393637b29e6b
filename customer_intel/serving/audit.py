"""The scoring API's audit log: one JSON line per prediction, written locally before the response returns, shipped to
object storage in batches.

Why a local file first: the line must be durable before the client sees the answer, and an object-store PUT per request
would put S3's latency (and its outages) on every prediction. Why segments: a sealed segment is immutable and has a name
of its own, so the object key is a function of that name only (``<prefix>/date=YYYY-MM-DD/<segment stem>.jsonl``) and a
segment shipped again after a crash overwrites its own object instead of duplicating lines.

Local layout under ``directory``:
  ``current-<pid>.jsonl``  being written by one live process, which holds an exclusive ``flock`` on it while alive
                          (the lock dies with the process, so a SIGKILLed writer's file can be told from a live one's);
  ``segment-<UTC yyyymmddThhmmssffffff>-<host>-<pid>-<seq>.jsonl``  sealed (renamed, atomically), waiting to ship.
Whoever ships a segment holds a non-blocking ``flock`` on it meanwhile, so two processes never ship one segment at once;
a segment is deleted only after its PUT succeeded, so a line is never lost, at worst shipped twice to the same key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the protocol only: importing customer_intel.resources pulls in Dagster (seconds) for no runtime use
    from customer_intel.resources.storage import ObjectStore

logger = logging.getLogger(__name__)

SEGMENT_NAME = re.compile(r"^segment-(\d{4})(\d{2})(\d{2})T\d{12}-.+\.jsonl$")
LOCK_WAIT_SECONDS = 2.0  # how long opening our current file waits for a claimer that holds its lock for a rename


def _host() -> str:
    """This machine's name, safe in a file name and an object key."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (another process may have renamed or deleted it between our
    open() and our flock())."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def complete_lines(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut after its last newline: (the complete lines, an incomplete trailing line or b"")."""
    end = data.rfind(b"\n") + 1
    return data[:end], data[end:]


class AuditLog:
    """Append audit entries as JSON lines; seal them into segments every ``batch_lines`` lines (or when the current file
    is ``interval_seconds`` old) and ship sealed segments to ``store`` under ``prefix`` from a background thread.

    ``fsync=False`` by default: ``record()`` returns once the line is written to the OS (page cache), which survives the
    failures an API process meets (a crash, an OOM kill, a container restart); only a kernel crash or power loss between
    the write and the kernel's own flush (seconds) can lose it, and an fsync per request would put a disk round-trip -
    milliseconds, more on network volumes - on every prediction. Set ``fsync=True`` where that window is not acceptable.

    ``store=None`` keeps every line in ``directory`` (segments are still sealed, nothing ships, nothing is deleted).
    """

    def __init__(self, directory: str | Path, store: ObjectStore | None, prefix: str = "audit_log", *,
                 batch_lines: int = 500, interval_seconds: float = 30.0, fsync: bool = False):
        if batch_lines < 1:
            raise ValueError(f"batch_lines must be at least 1, got {batch_lines}")
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.directory = Path(directory)
        self.store = store
        self.prefix = prefix.strip("/")
        self.batch_lines = batch_lines
        self.interval_seconds = interval_seconds
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._host = _host()
        self._seq = 0
        self._write_lock = threading.Lock()  # the current file: its fd, its line count, sealing it
        self._ship_lock = threading.Lock()  # one shipping round at a time in this process (the thread's, flush's)
        self._stats_lock = threading.Lock()
        self._fd: int | None = None
        self._current_path: Path | None = None
        self._current_lines = 0
        self._current_size = 0
        self._current_since = 0.0  # monotonic time of the current file's first line
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recorded = self._shipped_lines = self._shipped_objects = 0
        self._last_error: str | None = None
        self._segment_lines: dict[str, tuple[int, int]] = {}  # segment name -> (size, complete lines): pending_lines reads a file once

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> AuditLog:
        """Seal the current files of dead writers, ship every sealed segment, then start the shipper thread."""
        if self._closed:
            raise RuntimeError(f"the audit log in {self.directory} is closed; create a new AuditLog")
        if self._thread is not None:
            return self
        claimed = self._claim_dead_writers()
        if claimed:
            logger.info("audit log %s: sealed %d current file(s) left by dead writers: %s", self.directory, len(claimed),
                        ", ".join(claimed))
        if self.store is not None:
            self._ship_sealed()
            self._thread = threading.Thread(target=self._run, name=f"audit-shipper-{self.directory.name}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the shipper thread, seal the current file and ship what is sealed; idempotent. A PUT that fails here
        leaves its segment on disk for the next ``start()``."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._write_lock:
            if self._fd is not None:  # opened, but its only write failed: an empty file nobody needs
                os.close(self._fd)
                self._current_path.unlink(missing_ok=True)
                self._fd, self._current_path = None, None

    def __enter__(self) -> AuditLog:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------------------

    def record(self, entry: dict) -> None:
        """Append ``entry`` as one JSON line, written to the OS (and fsynced with ``fsync=True``) before returning.

        A failed write (disk full) raises: the caller decides whether a prediction may go unaudited. The partial bytes of
        such a write are cut off again, so the next line does not merge with them.
        """
        line = (json.dumps(entry, default=str, sort_keys=True) + "\n").encode()
        with self._write_lock:
            if self._closed:
                raise RuntimeError(f"the audit log in {self.directory} is closed: record() after close()")
            if self._fd is None:
                self._open_current()
            self._write(line)
            self._current_lines += 1
            if self._current_lines == 1:
                self._current_since = time.monotonic()
            sealed = self._current_lines >= self.batch_lines and self._seal_quietly()
        with self._stats_lock:
            self._recorded += 1
        if sealed:
            self._wake.set()

    def _write(self, line: bytes) -> None:
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._current_size)
            raise OSError(exc.errno, f"cannot append an audit line to {self._current_path}: {exc.strerror}") from exc
        self._current_size += len(line)

    def _open_current(self) -> None:
        """Open ``current-<pid>.jsonl`` holding its flock. A non-empty one with our pid is a dead predecessor's (a container
        restart reuses pids): it is sealed first, so our lines never follow its possibly incomplete last line."""
        path = self.directory / f"current-{os.getpid()}.jsonl"
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if not _try_lock(fd):
                os.close(fd)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} is locked by a live writer: only one AuditLog per process may write {self.directory}")
                time.sleep(0.01)  # a claimer renaming a dead predecessor's file holds the lock for a moment
                continue
            if not _still_named(fd, path):  # a claimer renamed it between our open() and our flock(): open afresh
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            if size:
                name = self._seal(path)
                os.close(fd)
                logger.warning("audit log %s: %s (%d bytes) was left by a dead process with this pid: sealed as %s",
                               self.directory, path.name, size, name)
                continue
            self._fd, self._current_path = fd, path
            self._current_lines = self._current_size = 0
            return

    def _seal(self, path: Path) -> str:
        """Rename ``path`` to a new segment name (atomic); the caller holds its lock. Returns the segment's name."""
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"segment-{stamp}-{self._host}-{os.getpid()}-{self._seq}.jsonl"
        os.rename(path, self.directory / name)
        if self.fsync:
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return name

    def _seal_current(self) -> bool:
        """Seal our current file if it has lines (the caller holds ``_write_lock``); the next record() opens a new one."""
        if self._fd is None or self._current_lines == 0:
            return False
        try:
            self._seal(self._current_path)
        finally:
            os.close(self._fd)  # releases the flock: the segment is free to ship
            self._fd, self._current_path = None, None
            self._current_lines = self._current_size = 0
        return True

    def _seal_quietly(self) -> bool:
        """``_seal_current`` for record(): the line is already written, so a failed rename is the shipper's problem, logged
        and kept in ``last_error``; the file stays unlocked under its name and the next record() seals it again."""
        try:
            return self._seal_current()
        except OSError as exc:
            logger.warning("audit log %s: sealing the current file failed: %s", self.directory, exc)
            self._set_error(f"sealing: {type(exc).__name__}: {exc}")
            return False

    def _claim_dead_writers(self) -> list[str]:
        """Seal every ``current-*.jsonl`` but ours whose flock we can take (its writer is dead); delete the empty ones."""
        claimed = []
        for path in sorted(self.directory.glob("current-*.jsonl")):
            if path == self._current_path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if not _try_lock(fd) or not _still_named(fd, path):
                    continue  # alive, or claimed by another process a moment ago
                with self._write_lock:  # _seal's sequence number
                    if os.fstat(fd).st_size:
                        claimed.append(f"{path.name} -> {self._seal(path)}")
                    else:
                        path.unlink()
            finally:
                os.close(fd)
        return claimed

    # -- shipping --------------------------------------------------------------------------------------------------

    def flush(self) -> list[str]:
        """Seal the current file if it has lines and ship every sealed segment now; returns the object keys written.
        A failed PUT is logged and kept in ``stats()["last_error"]``, not raised."""
        with self._write_lock:
            self._seal_current()
        return self._ship_sealed()

    def _run(self) -> None:
        """The shipper thread: ship on every wake-up (a segment was sealed) or every ``interval_seconds``; seal a quiet
        current file once its first line is ``interval_seconds`` old so a quiet API still ships."""
        while not self._stop.is_set():
            self._wake.wait(self._seconds_to_next_tick())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self._write_lock:
                    if self._current_lines and time.monotonic() - self._current_since >= self.interval_seconds:
                        self._seal_current()
                self._ship_sealed()
            except Exception as exc:  # the thread must outlive any error; the next tick retries
                logger.exception("audit log %s: shipping round failed", self.directory)
                self._set_error(f"{type(exc).__name__}: {exc}")

    def _seconds_to_next_tick(self) -> float:
        with self._write_lock:
            if not self._current_lines:
                return self.interval_seconds
            return max(0.01, self._current_since + self.interval_seconds - time.monotonic())

    def _ship_sealed(self) -> list[str]:
        """Ship every sealed segment in the folder, oldest first; stop at the first failed PUT (the store is likely down,
        and each further try would wait out the client's own retries). Returns the keys written."""
        if self.store is None:
            return []
        keys: list[str] = []
        with self._ship_lock:
            for path in sorted(self.directory.glob("segment-*.jsonl")):
                try:
                    key = self._ship_segment(path)
                except Exception as exc:
                    logger.warning("audit log %s: shipping %s failed, kept for the next try: %s", self.directory, path.name, exc)
                    self._set_error(f"{path.name}: {type(exc).__name__}: {exc}")
                    return keys
                if key is not None:
                    keys.append(key)
            self._set_error(None)
        return keys

    def _ship_segment(self, path: Path) -> str | None:
        """PUT one segment's complete lines, then delete it; None if it is not ours to ship (gone, or another process
        holds it) or its name carries no date."""
        match = SEGMENT_NAME.match(path.name)
        if match is None:
            logger.warning("audit log %s: %s is not a segment name this log writes; left alone", self.directory, path.name)
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # shipped and deleted by another process since the listing
        with os.fdopen(fd, "rb") as handle:
            if not _try_lock(fd) or not _still_named(fd, path):
                return None
            data, partial = complete_lines(handle.read())
            if partial:
                logger.warning("audit log %s: %s ends with an incomplete line (%d bytes; its writer died mid-write, so no client "
                               "was answered for it): dropped, the %d complete lines ship",
                               self.directory, path.name, len(partial), data.count(b"\n"))
            key = "/".join(part for part in (self.prefix, f"date={match[1]}-{match[2]}-{match[3]}", path.name) if part)
            if data:
                self.store.put(key, data)
            path.unlink()
        lines = data.count(b"\n")
        with self._stats_lock:
            self._shipped_lines += lines
            self._shipped_objects += 1 if data else 0
        return key if data else None

    # -- reporting -------------------------------------------------------------------------------------------------

    def _set_error(self, message: str | None) -> None:
        with self._stats_lock:
            self._last_error = message

    def _pending_segment_lines(self) -> int:
        total, seen = 0, {}
        for path in self.directory.glob("segment-*.jsonl"):
            try:
                size = path.stat().st_size
                cached = self._segment_lines.get(path.name)
                lines = cached[1] if cached and cached[0] == size else path.read_bytes().count(b"\n")
            except FileNotFoundError:
                continue  # shipped meanwhile
            seen[path.name] = (size, lines)
            total += lines
        self._segment_lines = seen
        return total

    def stats(self) -> dict:
        """Counts of this process's log; ``pending_lines`` = lines on local disk not yet shipped (ours and any other
        process's in the folder). ``last_error`` is the last failed PUT, cleared by a round that ships everything."""
        with self._write_lock:
            current = self._current_lines
        pending = current + self._pending_segment_lines()
        with self._stats_lock:
            return {
                "recorded": self._recorded,
                "shipped_lines": self._shipped_lines,
                "shipped_objects": self._shipped_objects,
                "pending_lines": pending,
                "last_error": self._last_error,
                "location": self.store.uri(self.prefix) if self.store is not None else str(self.directory.resolve()),
                "shipping": self.store is not None,
            }
