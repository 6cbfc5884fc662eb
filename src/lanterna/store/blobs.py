"""Blob storage for media: where uploaded bytes live, keyed by their SHA-256 (hex).

Two stores implement :class:`BlobStore`:

- :class:`LocalBlobs` (the default): a content-addressed directory (``<dir>/ab/cd/<hex>``)
  under the data dir. The server receives the bytes itself (its own upload URL), writes
  them to a temporary file, fsyncs it, renames it into place and fsyncs the directory
  before the upload is acknowledged.
- :class:`S3Blobs`: any S3-compatible object store through boto3; uploads and downloads
  go straight to it with presigned ``PUT``/``GET`` URLs, so the bytes bypass the server.

:func:`purge_freed` deletes the blobs no media record holds any more (the store's
``media`` operations list them); retention and trace deletion call it after their
transaction committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .db import Conn

#: Seconds an object store's clock (or a file's mtime) may lag the server's.
CLOCK_SKEW_SECONDS = 5
#: Keys are 64 lowercase hex digits (a SHA-256); anything else is refused.
_HEX = frozenset("0123456789abcdef")


class BlobError(Exception):
    """A blob could not be stored; the message says why (no secrets in it)."""


def valid_key(key: str) -> bool:
    """Whether ``key`` is a blob key (a SHA-256 in hex)."""
    return len(key) == 64 and set(key) <= _HEX


class BlobStore(Protocol):
    """Where media bytes live, by key (the content's SHA-256 in hex)."""

    #: True when clients upload and download directly (presigned URLs); False when the
    #: server receives and serves the bytes itself.
    direct: bool

    def exists(self, key: str) -> bool:
        """Whether the blob is stored."""
        ...

    def written_since(self, key: str, since: datetime) -> bool:
        """Whether the blob is stored and was (last) written at or after ``since`` (a few
        seconds of clock skew allowed): an upload made after ``since``."""
        ...

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Store the bytes durably under ``key`` (the caller checked their hash)."""
        ...

    def read(self, key: str) -> bytes:
        """The stored bytes; FileNotFoundError when there are none."""
        ...

    def delete(self, key: str) -> None:
        """Delete the blob (no error when it is absent)."""
        ...

    def upload_url(self, key: str, content_type: str, sha256_b64: str, seconds: int) -> str:
        """A presigned PUT URL (only when :attr:`direct`)."""
        ...

    def download_url(self, key: str, content_type: str, filename: str, seconds: int) -> str:
        """A presigned GET URL (only when :attr:`direct`)."""
        ...


class LocalBlobs:
    """A content-addressed directory: ``<root>/<k[:2]>/<k[2:4]>/<k>``, files ``0600``."""

    direct = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise BlobError(f"not a blob key: {key[:80]!r}")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        """Whether the blob's file exists."""
        return self._path(key).is_file()

    def written_since(self, key: str, since: datetime) -> bool:
        """Whether the blob's file was written at or after ``since``."""
        try:
            written = self._path(key).stat().st_mtime
        except FileNotFoundError:
            return False
        return written >= since.timestamp() - CLOCK_SKEW_SECONDS

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Write to a temporary file in the target folder, fsync it, rename it into place,
        fsync the folder: after this returns the blob survives a crash."""
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def read(self, key: str) -> bytes:
        """The file's bytes."""
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        """Remove the file (and nothing else)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def upload_url(self, key: str, content_type: str, sha256_b64: str, seconds: int) -> str:
        """Not direct: the server's own upload route takes the bytes."""
        raise NotImplementedError

    def download_url(self, key: str, content_type: str, filename: str, seconds: int) -> str:
        """Not direct: the server's own media route serves the bytes."""
        raise NotImplementedError


class S3Blobs:
    """An S3-compatible bucket (AWS S3, MinIO, R2, ...): objects ``<prefix><key>``."""

    direct = True

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        try:
            import boto3  # the [s3] extra; imported only when S3 storage is configured
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise BlobError("S3 media storage needs boto3: pip install 'lanterna[s3]'") from exc
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    @property
    def origin(self) -> str:
        """The scheme, host and port presigned URLs point at (for a page's CSP)."""
        from urllib.parse import urlsplit

        parts = urlsplit(str(self._client.meta.endpoint_url))
        return f"{parts.scheme}://{parts.netloc}"

    def _object(self, key: str) -> str:
        if not valid_key(key):
            raise BlobError(f"not a blob key: {key[:80]!r}")
        return self.prefix + key

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD answer, or None when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self._client.head_object(
                Bucket=self.bucket, Key=self._object(key)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def exists(self, key: str) -> bool:
        """A HEAD of the object."""
        return self._head(key) is not None

    def written_since(self, key: str, since: datetime) -> bool:
        """A HEAD of the object: its ``LastModified`` at or after ``since``."""
        head = self._head(key)
        if head is None:
            return False
        modified: datetime = head["LastModified"]
        return modified.timestamp() >= since.timestamp() - CLOCK_SKEW_SECONDS

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """A PUT of the object (used when the server itself extracts media)."""
        data = b"".join(chunks)
        self._client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)

    def read(self, key: str) -> bytes:
        """A GET of the object."""
        from botocore.exceptions import ClientError

        try:
            got = self._client.get_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as exc:
            raise FileNotFoundError(key) from exc
        return bytes(got["Body"].read())

    def delete(self, key: str) -> None:
        """A DELETE of the object."""
        self._client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def upload_url(self, key: str, content_type: str, sha256_b64: str, seconds: int) -> str:
        """A presigned PUT bound to the content type and the SHA-256 checksum."""
        return str(
            self._client.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._object(key),
                    "ContentType": content_type,
                    "ChecksumSHA256": sha256_b64,
                },
                ExpiresIn=seconds,
            )
        )

    def download_url(self, key: str, content_type: str, filename: str, seconds: int) -> str:
        """A presigned GET answered with the given type and an attachment disposition."""
        return str(
            self._client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._object(key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=seconds,
            )
        )


def sha256_hex(data: bytes) -> str:
    """The blob key of ``data``."""
    return hashlib.sha256(data).hexdigest()


def purge_freed(
    run_write: Callable[[Callable[[Conn], Any]], Any],
    freed: Callable[[Conn], list[str]],
    forget: Callable[[Conn, list[str]], list[str]],
    blobs: BlobStore,
) -> int:
    """Delete the blobs no media record holds any more; returns how many went.

    ``run_write`` runs a unit of work in a committed write transaction (the writer's
    ``run_sync``); ``freed`` and ``forget`` are the store's ``media.freed_blobs`` and
    ``media.forget_freed``. Keys are taken off the list in a transaction first, so a key
    some record holds again (a new upload of the same bytes) is never deleted.
    """
    total = 0
    while True:
        keys = run_write(lambda conn: forget(conn, freed(conn)))
        if not keys:
            return total
        for key in keys:
            blobs.delete(key)
        total += len(keys)
