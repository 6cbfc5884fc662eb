"""``lanterna import``: a JSONL export sent to a server's ingestion API.

Each line of an export (``{"type", "data"}``, :mod:`lanterna.server.export`) becomes
the Langfuse ingestion event that creates the entity as it was: a ``trace-create`` with
the trace's fields, a ``<type>-create`` per observation (its usage and cost as the
client first sent them, ``providedUsageDetails`` and ``providedCostDetails``, so costs
are calculated again as they were), a ``score-create`` per score. Events go out in
batches through ``POST /api/public/ingestion`` of any server (this one, another
project's keys, another machine), so they take the normal write path: masking, rollups,
validation. A ``media`` record (an image, audio or file a trace refers to, its bytes in
base64) goes through the media API as the Langfuse SDKs upload it: ``POST
/api/public/media`` with the trace id and the SHA-256, the bytes ``PUT`` to the upload
URL it answers (none when the server has them already), then ``PATCH`` with the upload's
status; so the trace's ``@@@langfuseMedia:...@@@`` references resolve on the target.
The file is read line by line (constant memory).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from .. import _json

#: API fields the server computes or that name the source project: never sent.
_SERVER_FIELDS = frozenset(
    {
        "projectId",
        "htmlPath",
        "createdAt",
        "updatedAt",
        "bookmarked",
        "usage",
        "usageDetails",
        "costDetails",
        "providedUsageDetails",
        "providedCostDetails",
        "costInfo",
        "inputPrice",
        "outputPrice",
        "totalPrice",
        "calculatedInputCost",
        "calculatedOutputCost",
        "calculatedTotalCost",
        "totalCost",
        "latency",
        "timeToFirstToken",
        "promptTokens",
        "completionTokens",
        "totalTokens",
        "unit",
        "modelId",
        "promptId",
        "authorUserId",
    }
)


class ImportFailed(Exception):
    """A line that is not an export record; the message names the line."""


@dataclass
class ImportResult:
    """What an import sent and what the server refused."""

    sent: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def event_of(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The ingestion event that recreates one exported record."""
    body = {k: v for k, v in data.items() if k not in _SERVER_FIELDS and v is not None}
    if kind == "trace":
        event_type = "trace-create"
        stamp = data.get("timestamp")
    elif kind == "observation":
        event_type = f"{str(data.get('type') or 'SPAN').lower()}-create"
        if data.get("providedUsageDetails"):
            body["usageDetails"] = data["providedUsageDetails"]
        if data.get("providedCostDetails"):
            body["costDetails"] = data["providedCostDetails"]
        body.pop("type", None)
        stamp = data.get("startTime")
    elif kind == "score":
        event_type = "score-create"
        if data.get("dataType") in ("CATEGORICAL", "TEXT") and data.get("stringValue") is not None:
            body["value"] = body.pop("stringValue")  # sent as the value, as clients do
        stamp = data.get("timestamp")
    else:
        raise ImportFailed(f"unknown record type {kind!r}")
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "timestamp": data.get("updatedAt") or stamp,
        "body": body,
    }


def read_records(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind, data)`` of each line of an export (blank lines skipped)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = _json.loads(line)
        except _json.JSONDecodeError:
            raise ImportFailed(f"line {number}: not JSON") from None
        if (
            not isinstance(record, dict)
            or record.get("type") not in ("trace", "observation", "score", "media")
            or not isinstance(record.get("data"), dict)
        ):
            raise ImportFailed(f"line {number}: not an export record ({{'type', 'data'}})")
        yield record["type"], record["data"]


def send(
    client: httpx.Client,
    records: Iterable[tuple[str, dict[str, Any]]],
    *,
    batch: int = 200,
    progress: Callable[[ImportResult], None] | None = None,
    retries: int = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> ImportResult:
    """Send ``records`` through ``client`` (base URL and keys set) to the ingestion API;
    a batch answered 429 (the target project's rate limit) is sent again after the
    ``Retry-After`` it names, up to ``retries`` times."""
    result = ImportResult()
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        response = client.post("/api/public/ingestion", json={"batch": pending})
        for _ in range(retries):  # the target's rate limit: wait as it says, then again
            if response.status_code != 429:
                break
            sleep(min(float(response.headers.get("Retry-After") or 1), 60.0))
            response = client.post("/api/public/ingestion", json={"batch": pending})
        if response.status_code != 207:
            raise ImportFailed(f"the server answered {response.status_code}: {response.text[:300]}")
        for e in response.json().get("errors", []):
            result.errors.append(f"{e.get('id')}: {e.get('message')} {e.get('error') or ''}")
        pending.clear()
        if progress is not None:
            progress(result)

    for kind, data in records:
        if kind == "media":
            error = upload_media(client, data)
            if error:
                result.errors.append(error)
            result.sent[kind] = result.sent.get(kind, 0) + 1
            continue
        pending.append(event_of(kind, data))
        result.sent[kind] = result.sent.get(kind, 0) + 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return result


def _unsigned(request: httpx.Request) -> httpx.Request:
    """No credentials: an upload URL is signed (an S3 one refuses a second auth)."""
    return request


def upload_media(client: httpx.Client, data: dict[str, Any]) -> str | None:
    """Upload one exported media record through the media API; None, or what failed."""
    media_id = data.get("id")
    try:
        content = base64.b64decode(str(data["base64"]), validate=True)
    except (KeyError, ValueError):
        return f"media {media_id}: no base64 bytes in the record"
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    body = {
        "traceId": data.get("traceId"),
        "contentType": data.get("contentType"),
        "contentLength": len(content),
        "sha256Hash": digest,
        "field": "input",
    }
    response = client.post("/api/public/media", json=body)
    if response.status_code != 200:
        return f"media {media_id}: {response.status_code} {response.text[:300]}"
    answer = response.json()
    url = answer.get("uploadUrl")
    if url is None:
        return None  # the server holds these bytes already
    started = time.monotonic()
    headers = {"Content-Type": str(data.get("contentType")), "x-amz-checksum-sha256": digest}
    put = client.put(url, content=content, headers=headers, auth=_unsigned)  # signed URL
    client.patch(
        f"/api/public/media/{answer['mediaId']}",
        json={
            "uploadedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "uploadHttpStatus": put.status_code,
            "uploadHttpError": None if put.is_success else put.text[:300],
            "uploadTimeMs": int((time.monotonic() - started) * 1000),
        },
    )
    return None if put.is_success else f"media {media_id}: upload {put.status_code}"


def import_file(
    source: IO[str],
    base_url: str,
    public_key: str,
    secret_key: str,
    *,
    progress: Callable[[ImportResult], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ImportResult:
    """Import the JSONL export ``source`` into the project of the keys at ``base_url``."""
    with httpx.Client(
        base_url=base_url.rstrip("/"),
        auth=(public_key, secret_key),
        timeout=60.0,
        transport=transport,
    ) as client:
        return send(client, read_records(source), progress=progress)
