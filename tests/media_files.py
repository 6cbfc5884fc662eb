"""Small real media files for the media tests: a PNG a browser can show, a WAV a
browser can play, and the SDK's view of them (SHA-256, media id)."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The bucket and credentials of the local S3 server (moto) of the S3 tests.
BUCKET = "lanterna-media"
CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port, real HTTP) with an empty bucket; its
    endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def s3_settings(endpoint: str) -> dict[str, Any]:
    """Settings overrides for media in the moto bucket."""
    return {
        "media_storage": "s3",
        "media_s3_bucket": BUCKET,
        "media_s3_endpoint_url": endpoint,
        "media_s3_region": "us-east-1",
        "media_s3_access_key_id": CREDENTIALS["aws_access_key_id"],
        "media_s3_secret_access_key": CREDENTIALS["aws_secret_access_key"],
    }


def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    """A solid-colour RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def wav(samples: int = 800, rate: int = 8000) -> bytes:
    """A short 8-bit mono WAV (a ramp)."""
    data = bytes(i % 256 for i in range(samples))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sha256_b64(data: bytes) -> str:
    """The SHA-256 as the SDK sends it (standard base64)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def media_id(data: bytes) -> str:
    """The media id the SDK derives: 22 characters of the URL-safe base64 SHA-256."""
    return sha256_b64(data).replace("+", "-").replace("/", "_")[:22]


def token(data: bytes, content_type: str, source: str = "base64_data_uri") -> str:
    """The reference token the SDK puts in place of the media."""
    return f"@@@langfuseMedia:type={content_type}|id={media_id(data)}|source={source}@@@"
