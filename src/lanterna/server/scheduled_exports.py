"""Scheduled exports to S3-compatible object storage (blob-storage integrations).

A project's integration (``/api/public/integrations/blob-storage``) names a bucket, a
format (JSONL, JSON, CSV or Parquet, gzip for the text ones) and a frequency. The
:class:`ExportJob` exports, for each due integration it wins the lease of, the time
window from the end of its last successful export to ``now - LAG`` (so traces still
arriving are not cut in half): the traces whose timestamp falls in the window with
their observations and scores, through the exporter of ``server/export.py``, one file
per kind under ``<prefix><project id>/<kind>s/``. A successful run moves
``last_sync_at`` to the window's end: the next run exports only what is newer. A failed
run keeps it and records the error; both make the integration due again a period later.

Time comes from an injected clock, never from sleeping: tests call ``tick(now)``.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any, TypeVar

from .. import _json
from ..alerts.outbound import OutboundPolicy, guard
from ..alerts.secretbox import SecretBox
from ..store.db import Conn, Database
from ..store.interface import Store, TraceQuery
from ..timeutil import Ticker
from ..timeutil import now as utc_now
from .export import KINDS, encode, records

log = logging.getLogger("lanterna.scheduled_export")

T = TypeVar("T")
Write = Callable[[Callable[[Conn], T]], T]
#: Exports stop this long before "now": data of the last minutes may still arrive.
LAG = timedelta(minutes=20)
FREQUENCIES = {
    "every_20_minutes": timedelta(minutes=20),
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
}
EXTENSIONS = {"JSONL": "jsonl", "JSON": "json", "CSV": "csv", "PARQUET": "parquet"}
CONTENT_TYPES = {
    "JSONL": "application/x-ndjson",
    "JSON": "application/json",
    "CSV": "text/csv",
    "PARQUET": "application/vnd.apache.parquet",
}


#: Which observation columns each ``exportFieldGroups`` entry selects (Langfuse's groups
#: mapped onto our v1 observation fields; a field named by no group is always kept).
GROUP_FIELDS = {
    "core": ("id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"),
    "basic": ("name", "level", "statusMessage", "version", "environment"),
    "time": ("completionStartTime", "createdAt", "updatedAt"),
    "io": ("input", "output"),
    "metadata": ("metadata",),
    "model": ("model", "modelId", "modelParameters"),
    "usage": (
        "usage", "usageDetails", "costDetails", "totalCost", "calculatedInputCost",
        "calculatedOutputCost", "calculatedTotalCost", "inputPrice", "outputPrice",
        "totalPrice", "costInfo", "promptTokens", "completionTokens", "totalTokens", "unit",
    ),
    "prompt": ("promptId", "promptName", "promptVersion"),
    "metrics": ("latency", "timeToFirstToken"),
}  # fmt: skip


def observation_columns(
    items: Iterator[tuple[str, dict[str, Any]]], groups: list[str] | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Observations with only the columns of ``groups`` (all when None or empty)."""
    if not groups:
        yield from items
        return
    dropped = {f for g, names in GROUP_FIELDS.items() if g not in groups for f in names}
    for kind, item in items:
        if kind == "observation":
            item = {k: v for k, v in item.items() if k not in dropped}
        yield kind, item


def context_of(project_id: str) -> str:
    """What a sealed secret access key is bound to (another row cannot open it)."""
    return f"blob-storage:{project_id}"


def s3_client(row: dict[str, Any], box: SecretBox, policy: OutboundPolicy) -> Any:
    """A boto3 S3 client for an integration (its endpoint checked by the SSRF guard;
    its secret opened only here)."""
    import boto3
    from botocore.config import Config

    endpoint = row["endpoint"] or None
    if endpoint:
        guard(endpoint, policy)
    secret = None
    if row["secret_access_key_sealed"]:
        secret = box.open(row["secret_access_key_sealed"], context_of(row["project_id"]))
    style = "path" if row["force_path_style"] else "auto"
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=row["region"] or None,
        aws_access_key_id=row["access_key_id"] or None,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": style}, retries={"max_attempts": 3}),
    )


def check_upload(row: dict[str, Any], box: SecretBox, policy: OutboundPolicy) -> None:
    """Write a small object to the bucket (the check of a new configuration)."""
    client = s3_client(row, box, policy)
    client.put_object(
        Bucket=row["bucket_name"],
        Key=f"{row['prefix']}.lanterna-write-test",
        Body=b"Lanterna checks that it may write here.\n",
    )


def _json_array(items: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    first = True
    yield b"["
    for _kind, item in items:
        yield (b"" if first else b",") + _json.dumpb(item)
        first = False
    yield b"]"


def file_bytes(
    items: Iterator[tuple[str, dict[str, Any]]], file_type: str, kind: str
) -> Iterator[bytes]:
    """One kind's records in the integration's format (JSONL lines are the
    ``{"type", "data"}`` lines ``lanterna import`` reads)."""
    if file_type == "JSON":
        return _json_array(items)
    fmt = {"JSONL": "jsonl", "CSV": "csv", "PARQUET": "parquet"}[file_type]
    return encode(items, fmt, kind)


@dataclass
class ExportRun:
    """What one run of one integration did."""

    integration_id: str
    project_id: str
    window: tuple[datetime | None, datetime]
    counts: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    error: str | None = None


class ExportJob:
    """Runs the due blob-storage exports; one per process, a lease per integration."""

    def __init__(
        self,
        db: Database,
        store: Store,
        write: Write[Any],
        box: Callable[[], SecretBox],
        policy: OutboundPolicy,
        *,
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = timedelta(minutes=30),
        lag: timedelta = LAG,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.write = write
        self.box = box
        self.policy = policy
        self.clock = clock
        self.lease = lease
        self.lag = lag
        self.owner = owner or f"export-{uuid.uuid4()}"

    def read(self, query: Callable[[Conn], T]) -> T:
        """Run ``query`` on a read connection."""
        with self.db.read() as conn:
            return query(conn)

    def tick(self, now: datetime | None = None) -> list[ExportRun]:
        """Export every integration due at ``now`` (the clock's time by default) whose
        lease this process wins; what each run did."""
        at = now or self.clock()
        exports = self.store.blob_exports
        runs: list[ExportRun] = []
        owner, until = self.owner, at + self.lease
        for integration_id in self.read(lambda c: exports.due_ids(c, at)):
            row = self._claim(integration_id, owner, at, until)
            if row is None:
                continue
            runs.append(self._run(row, at))
        return runs

    def _claim(
        self, integration_id: str, owner: str, at: datetime, until: datetime
    ) -> dict[str, Any] | None:
        """The integration, once its lease is taken; None when another process has it."""
        exports = self.store.blob_exports
        if not self.write(lambda c: exports.claim(c, integration_id, owner, at, until)):
            return None
        return self.read(lambda c: exports.get(c, integration_id))

    def _start_of(self, row: dict[str, Any]) -> datetime | None:
        if row["last_sync_at"] is not None:
            return row["last_sync_at"]
        if row["export_mode"] == "FROM_CUSTOM_DATE":
            return row["export_start_date"]
        if row["export_mode"] == "FROM_TODAY":
            created: datetime = row["created_at"]
            return created.replace(hour=0, minute=0, second=0, microsecond=0)
        return None  # FULL_HISTORY

    def _run(self, row: dict[str, Any], at: datetime) -> ExportRun:
        start, end = self._start_of(row), at - self.lag
        run = ExportRun(row["id"], row["project_id"], (start, end))
        try:
            if start is None or start < end:
                self._export(row, run)
        except Exception as exc:  # recorded on the integration, shown by its status
            run.error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning(
                "export of project %s to object storage failed: %s", run.project_id, run.error
            )
        period = FREQUENCIES.get(row["export_frequency"], timedelta(hours=1))
        synced = None if run.error else (end if start is None or start < end else start)
        self.write(
            lambda c: self.store.blob_exports.finish(
                c,
                run.integration_id,
                self.owner,
                next_sync_at=at + period,
                synced_to=synced,
                error=run.error,
                at=at,
            )
        )
        if not run.error:
            log.info(
                "export of project %s to object storage: %s",
                run.project_id,
                ", ".join(f"{n} {k}(s)" for k, n in run.counts.items()),
            )
        return run

    def _export(self, row: dict[str, Any], run: ExportRun) -> None:
        client = s3_client(row, self.box(), self.policy)
        start, end = run.window
        query = TraceQuery(from_timestamp=start, to_timestamp=end)
        file_type = row["file_type"]
        gzipped = bool(row["compressed"]) and file_type != "PARQUET"
        stamp = end.strftime("%Y-%m-%dT%H-%M-%SZ")
        for kind in KINDS:
            counted = [0]

            def counting(
                items: Iterator[tuple[str, dict[str, Any]]], counted: list[int] = counted
            ) -> Iterator[tuple[str, dict[str, Any]]]:
                for item in items:
                    counted[0] += 1
                    yield item

            found = records(self.store, self.read, run.project_id, query, kinds=(kind,))
            items = counting(observation_columns(found, row["export_field_groups"]))
            key = f"{row['prefix']}{run.project_id}/{kind}s/{stamp}.{EXTENSIONS[file_type]}" + (
                ".gz" if gzipped else ""
            )
            with tempfile.TemporaryFile() as spool:
                _spool(file_bytes(items, file_type, kind), spool, gzipped)
                spool.seek(0)
                extra = {"ContentType": CONTENT_TYPES[file_type]}
                if gzipped:
                    extra["ContentEncoding"] = "gzip"
                client.upload_fileobj(spool, row["bucket_name"], key, ExtraArgs=extra)
            run.counts[kind] = counted[0]
            run.keys.append(key)


def _spool(chunks: Iterator[bytes], out: IO[bytes], gzipped: bool) -> None:
    """Write ``chunks`` to ``out`` (gzip-compressed when asked), in constant memory."""
    if not gzipped:
        for chunk in chunks:
            out.write(chunk)
        return
    with gzip.GzipFile(fileobj=out, mode="wb") as packed:
        for chunk in chunks:
            packed.write(chunk)


class ExportLoop(Ticker):
    """Calls :meth:`ExportJob.tick` every ``poll`` seconds in a daemon thread."""

    def __init__(self, job: ExportJob, poll: float) -> None:
        super().__init__(
            job.tick, poll, name="lanterna-exports", log=log, failure="export tick failed"
        )
        self.job = job
