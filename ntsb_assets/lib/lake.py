"""The lake: a local directory (embedded) or an S3/MinIO bucket prefix (production),
behind one small interface. Parquet goes through pyarrow's filesystem layer; bucket
management and listing through the ``minio`` client."""

from __future__ import annotations

import builtins
import json
import os
import posixpath
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class LakeError(Exception):
    pass


class Lake:
    """Paths are relative, '/'-separated keys under the lake root."""

    def __init__(
        self,
        url: str,
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        setting: str = "NTSB_LAKE_URL",
    ):
        self.url = url
        self.setting = setting
        # what a worker process needs to open the same lake
        self.init_args = dict(
            url=url, endpoint=endpoint, access_key=access_key, secret_key=secret_key, region=region, setting=setting
        )
        parsed = urlparse(url)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise LakeError(f"{setting}={url!r}: an s3:// URL needs a bucket (s3://bucket/prefix)")
            self.bucket = parsed.netloc
            self.prefix = parsed.path.strip("/")
            self.endpoint = endpoint
            ep = urlparse(endpoint) if endpoint else None
            self.fs = pafs.S3FileSystem(
                access_key=access_key,
                secret_key=secret_key,
                region=region,
                endpoint_override=(ep.netloc if ep else None),
                scheme=(ep.scheme if ep else "https"),
                allow_bucket_creation=True,
            )
            self._minio_args = dict(
                endpoint=ep.netloc if ep else "s3.amazonaws.com",
                access_key=access_key,
                secret_key=secret_key,
                secure=(ep.scheme == "https") if ep else True,
                region=region,
            )
            self.root = posixpath.join(self.bucket, self.prefix) if self.prefix else self.bucket
            self.is_local = False
        elif parsed.scheme in ("", "file"):
            local = Path(parsed.path if parsed.scheme == "file" else url).resolve()
            try:
                local.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LakeError(f"{setting}={url!r}: cannot create {local}: {exc.strerror or exc}") from None
            self.fs = pafs.LocalFileSystem()
            self.root = str(local)
            self.is_local = True
        else:
            raise LakeError(f"{setting}={url!r}: use a local path, file:// or s3://bucket/prefix")

    # ------------------------------------------------------------------ basics
    def minio(self):
        from minio import Minio

        return Minio(**self._minio_args)

    def ensure_ready(self) -> None:
        """Fail fast when the lake cannot be reached or written; create the bucket if missing."""
        if self.is_local:
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise LakeError(f"{self.setting}={self.url!r}: {self.root} is not writable by this user")
            return
        try:
            client = self.minio()
            if not client.bucket_exists(self.bucket):
                client.make_bucket(self.bucket)
        except Exception as exc:  # network errors come in many classes
            raise LakeError(
                f"{self.setting}={self.url!r} (NTSB_S3_ENDPOINT={self.endpoint!r}) is not reachable: {exc}"
            ) from None

    def full(self, key: str) -> str:
        return posixpath.join(self.root, key)

    def uri(self, key: str) -> str:
        return ("file://" if self.is_local else "s3://") + self.full(key)

    def exists(self, key: str) -> bool:
        return self.fs.get_file_info(self.full(key)).type != pafs.FileType.NotFound

    def list(self, prefix: str) -> list[str]:
        """Keys of files under a prefix, recursively, sorted."""
        info = self.fs.get_file_info(pafs.FileSelector(self.full(prefix), recursive=True, allow_not_found=True))
        root = self.root + "/"
        return sorted(i.path[len(root) :] for i in info if i.type == pafs.FileType.File)

    def size(self, key: str) -> int:
        return self.fs.get_file_info(self.full(key)).size

    def modified(self, key: str):
        """When the file was last written (a datetime, or None where the store does not say)."""
        return self.fs.get_file_info(self.full(key)).mtime

    def delete_prefix(self, prefix: str) -> None:
        path = self.full(prefix)
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(path)

    # ------------------------------------------------------------------ bytes
    def _object(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> None:
        if not self.is_local:
            import io

            self.minio().put_object(self.bucket, self._object(key), io.BytesIO(data), len(data))
            return
        self._atomic_write(key, lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        with self.fs.open_input_stream(self.full(key)) as fh:
            return fh.read()

    def put_json(self, key: str, obj) -> None:
        self.put_bytes(key, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())

    def get_json(self, key: str):
        return json.loads(self.get_bytes(key))

    def put_file(self, key: str, local: Path) -> None:
        if not self.is_local:  # one PUT, or a multipart upload for large files
            self.minio().fput_object(self.bucket, self._object(key), str(local))
            return

        def copy(out):
            with open(local, "rb") as src:
                while chunk := src.read(1 << 22):
                    out.write(chunk)

        self._atomic_write(key, copy)

    def get_file(self, key: str, local: Path) -> None:
        with self.fs.open_input_stream(self.full(key)) as src, open(local, "wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)

    def _atomic_write(self, key: str, write) -> None:
        """Readers never see a half-written file: it is written beside and renamed into
        place. (An S3 object appears only when its upload completes.)"""
        target = self.full(key)
        parent = posixpath.dirname(target)
        tmp = posixpath.join(parent, f".{posixpath.basename(target)}.{uuid.uuid4().hex}.tmp")
        try:
            os.makedirs(parent, exist_ok=True)
            with self.fs.open_output_stream(tmp) as out:
                write(out)
            os.replace(tmp, target)
        except OSError as exc:  # a lake that became unwritable or full: say which setting
            raise LakeError(
                f"{self.setting}={self.url!r}: cannot write {target}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ------------------------------------------------------------------ parquet
    def parquet_writer(self, key: str, schema: pa.Schema) -> ParquetSink:
        return ParquetSink(self, key, schema)

    def write_parquet(self, key: str, data: pa.Table) -> int:
        """Write a table as ZSTD Parquet through pyarrow: straight to S3 (the object appears
        when its upload completes), or beside the target and renamed into place on a local
        lake. Returns the bytes written."""
        if not self.is_local:
            pq.write_table(data, self.full(key), filesystem=self.fs, compression="zstd")
            return self.size(key)
        fd, tmp = tempfile.mkstemp(suffix=".parquet")
        os.close(fd)
        try:
            pq.write_table(data, tmp, compression="zstd")
            self.put_file(key, Path(tmp))
            return os.path.getsize(tmp)
        finally:
            os.unlink(tmp)

    def read_parquet(self, key: str, columns: builtins.list[str] | None = None) -> pa.Table:
        return pq.read_table(self.full(key), filesystem=self.fs, columns=columns)

    def parquet_schema(self, key: str) -> pa.Schema:
        with self.fs.open_input_file(self.full(key)) as fh:
            return pq.read_schema(fh)


class ParquetSink:
    """Writes ZSTD Parquet batch by batch to a local temporary file, then publishes it to
    the lake in one step (so a failed extraction leaves nothing behind)."""

    def __init__(self, lake: Lake, key: str, schema: pa.Schema):
        self.lake, self.key, self.schema = lake, key, schema
        fd, self.tmp = tempfile.mkstemp(suffix=".parquet")
        os.close(fd)
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.writer.write_batch(batch)
            self.rows += batch.num_rows

    def close(self) -> int:
        """Publish; returns the bytes written."""
        self.writer.close()
        size = os.path.getsize(self.tmp)
        try:
            self.lake.put_file(self.key, Path(self.tmp))
        finally:
            os.unlink(self.tmp)
        return size

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def copy_tree(src: Path, lake: Lake, prefix: str) -> list[str]:
    """Upload a file or the files of a directory under a prefix; returns the keys."""
    src = Path(src)
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    keys = []
    for f in files:
        rel = f.name if src.is_file() else f.relative_to(src).as_posix()
        key = posixpath.join(prefix, rel)
        lake.put_file(key, f)
        keys.append(key)
    return keys


def fetch_tree(lake: Lake, prefix: str, dest: Path) -> Path:
    """Download every file under a prefix into a local directory."""
    dest.mkdir(parents=True, exist_ok=True)
    for key in lake.list(prefix):
        rel = key[len(prefix) :].lstrip("/")
        local = dest / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        lake.get_file(key, local)
    return dest


__all__ = ["Lake", "LakeError", "ParquetSink", "copy_tree", "fetch_tree"]
