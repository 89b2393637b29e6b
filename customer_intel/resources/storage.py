"""Where tables live: a small object-store interface with a local-folder and an S3 implementation.

The Parquet IO manager, the raw-data reader and the sensors talk only to this interface, so the
local layout and the S3 layout are the same keys (``<asset>/date=YYYY-MM-DD/part-<id>.parquet`` + ``_SUCCESS``)
on different backends. S3 bytes move through a plain boto3 client (from dagster-aws's
``S3Resource``); s3fs is deliberately not used (it downgrades botocore under boto3).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

S3_SCHEME = "s3://"
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One object as listed: its key relative to the store, a content tag and when it last changed."""

    key: str
    etag: str
    last_modified: datetime
    size: int


class ObjectStore(Protocol):
    leftover_grace_seconds: float  # a data file no manifest names is a dead writer's once it is this old

    def write_lock(self, key: str) -> contextlib.AbstractContextManager: ...
    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: str | Path) -> None: ...
    def get(self, key: str) -> bytes: ...
    def local_path(self, key: str, staging: Path) -> str: ...
    def sha256(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> list[StoredObject]: ...
    def uri(self, key: str) -> str: ...


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix``)."""
    if not uri.startswith(S3_SCHEME):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, prefix.strip("/")


def stat_object(path: Path, key: str) -> StoredObject:
    """A local file as a StoredObject; its tag is size + modification time in nanoseconds, so a
    rewritten file gets a new tag without its content being read."""
    stat = path.stat()
    return StoredObject(key=key, etag=f"{stat.st_size}-{stat.st_mtime_ns}",
                        last_modified=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=UTC), size=stat.st_size)


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/a/b`` from a bucket and key parts (empty parts and stray slashes dropped)."""
    key = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return f"{S3_SCHEME}{bucket}/{key}" if key else f"{S3_SCHEME}{bucket}"


class LocalObjectStore:
    """Keys are paths under ``root``; every put is atomic (temp file + rename)."""

    leftover_grace_seconds = 0.0  # writers of one key take turns (``write_lock``), so a file no manifest names is a dead one's

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents and path != self.root:
            raise ValueError(f"key {key!r} escapes the store root {self.root}")
        return path

    def _write_atomically(self, key: str, write) -> None:
        """``write(handle)`` into a temp file beside ``key``, fsync, then rename over it."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def write_lock(self, key: str):
        """Hold an exclusive ``flock`` on ``key`` for a block: writers of one table take turns, across threads and processes
        of this machine, and a killed writer's lock dies with it. The lock file lives outside the store, in a folder of
        the temp folder per user (so one user's lock folder never refuses another's). A local warehouse is one
        machine's: processes on other hosts sharing the folder (NFS) do not see these locks — use S3 there."""
        folder = Path(tempfile.gettempdir()) / f"customer_intel_locks-{os.getuid()}"
        name = hashlib.sha256(str(self._path(key)).encode()).hexdigest()[:32]
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            handle = open(folder / f"{name}.lock", "a+b")  # noqa: SIM115 - closed below, after the lock is released
        except OSError as exc:
            raise OSError(exc.errno, f"cannot take the write lock of {self.uri(key)}: {exc.strerror}", str(folder)) from exc
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def put(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda handle: handle.write(data))

    def put_file(self, key: str, path: str | Path) -> None:
        """Copy a local file to ``key`` atomically (temp file + rename, like ``put``)."""

        def copy(handle):
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, CHUNK)

        self._write_atomically(key, copy)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def local_path(self, key: str, staging: Path) -> str:
        """The file itself: a local store needs no copy."""
        return str(self._path(key))

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with open(self._path(key), "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Files under ``prefix`` (a folder or a file), keys relative to the root, sorted (tags: ``stat_object``)."""
        start = self._path(prefix) if prefix else self.root
        paths = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file()) if start.is_dir() else []
        return [stat_object(path, path.relative_to(self.root).as_posix()) for path in paths]

    def uri(self, key: str) -> str:
        return str(self._path(key))


class S3ObjectStore:
    """Keys under ``s3://bucket/prefix/`` through a boto3 S3 client.

    A single PUT is atomic on S3 (readers see the old object or the new one, never a mix), so
    ``put`` needs no temp-and-rename; partition-level atomicity comes from the manifest that
    the Parquet writer publishes last. S3 has no lock that dies with its holder, so writers of one
    table do not take turns: a data file no manifest names counts as a dead writer's leftover only
    once it is an hour old (a younger one may be another run's, about to be published).
    """

    leftover_grace_seconds = 3600.0

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_uri(cls, client, uri: str) -> S3ObjectStore:
        bucket, prefix = split_s3_uri(uri)
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        key = key.strip("/")
        if any(part in ("..", ".") for part in key.split("/")):
            raise ValueError(f"key {key!r} escapes the store prefix {self.uri('')}")
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    def write_lock(self, key: str) -> contextlib.AbstractContextManager:
        """No lock (see the class): concurrent writers each publish a whole file, the last switch wins."""
        return contextlib.nullcontext()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, path: str | Path) -> None:
        """Upload a local file (multipart above boto3's threshold; the object appears whole or not at all)."""
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def local_path(self, key: str, staging: Path) -> str:
        """A local copy of the object under ``staging`` (the engine reads local files)."""
        staging.mkdir(parents=True, exist_ok=True)
        target = staging / key.strip("/").replace("/", "__")
        self.client.download_file(self.bucket, self._key(key), str(target))
        return str(target)

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Delete one object, or every object under ``key/`` when it names a folder-like prefix."""
        full = self._key(key)
        self.client.delete_object(Bucket=self.bucket, Key=full)
        children = [obj.key for obj in self.list(key) if obj.key != key.strip("/")]
        for start in range(0, len(children), 1000):
            batch = [{"Key": self._key(child)} for child in children[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Objects equal to ``prefix`` or under ``prefix/``, keys relative to the store, sorted."""
        full = self._key(prefix) if prefix else self.prefix
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                key = item["Key"]
                if full and key != full and not key.startswith(full.rstrip("/") + "/"):
                    continue  # "raw/transactions.csv" must not match prefix "raw/trans"
                relative = key[len(self.prefix):].lstrip("/") if self.prefix else key
                out.append(StoredObject(relative, item["ETag"].strip('"'), item["LastModified"], item["Size"]))
        return sorted(out, key=lambda obj: obj.key)

    def uri(self, key: str) -> str:
        return s3_uri(self.bucket, self._key(key) if key else self.prefix)
