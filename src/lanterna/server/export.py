"""Export of a project's traces, observations and scores, streamed in constant memory.

:func:`records` walks the traces matching a :class:`TraceQuery` (the trace list's
filters) oldest first, a page of trace ids at a time (a keyset walk:
``Lifecycle.export_trace_ids``), and yields each trace as the API shows it, followed
by its observations and scores, and the scores of its session that belong to no trace.
The writers turn that stream into bytes:

- ``jsonl``: one ``{"type": "trace" | "observation" | "score" | "media", "data": {...}}``
  per line, every kind in one file; ``lanterna import`` reads it back. A ``media``
  record (before the trace that refers to it) holds the bytes of an image, audio or
  file the trace's fields refer to (``@@@langfuseMedia:...@@@``), base64-encoded, with
  its id, trace id, content type, length and SHA-256;
- ``csv`` and ``parquet``: one entity kind per file (``kind``), one column per API
  field (objects and lists as JSON text); Parquet columns are typed from the first
  row group (numbers, booleans, text), written a row group per page. A CSV text cell
  starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``
  (a spreadsheet would run it as a formula).

Used by ``GET /api/public/export``, the dashboard's export link and ``lanterna export``.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.responses import StreamingResponse

from .. import _json
from ..errors import InvalidRequestData
from ..store.db import Conn
from ..store.filters import parse_filter, parse_time
from ..store.interface import Store, TraceQuery
from .shapes import observation_json, score_json, trace_json

log = logging.getLogger("lanterna.export")

T = TypeVar("T")
Read = Callable[[Callable[[Conn], T]], T]
KINDS = ("trace", "observation", "score")
#: What a JSONL export holds: every kind, and the media the traces refer to.
JSONL_KINDS = (*KINDS, "media")
FORMATS = ("jsonl", "csv", "parquet")
MEDIA_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
PAGE = 200


@dataclass
class Progress:
    """How many records of each kind went out so far."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(JSONL_KINDS, 0))

    def line(self) -> str:
        """``N trace(s), N observation(s), N score(s)`` (and ``, N media`` when any)."""
        shown = [f"{n} {k}(s)" for k, n in self.counts.items() if k != "media"]
        media = self.counts.get("media", 0)
        return ", ".join(shown + ([f"{media} media"] if media else []))


def records(
    store: Store,
    read: Read[Any],
    project_id: str,
    query: TraceQuery,
    *,
    kinds: Iterable[str] = KINDS,
    progress: Callable[[Progress], None] | None = None,
    page: int = PAGE,
    blobs: Callable[[str], bytes] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind, API object)`` of every matching trace and (of ``kinds``) its
    observations and scores, a page of traces per read; with ``"media"`` in ``kinds``
    and ``blobs`` (a blob's bytes by SH-256 hex), the uploaded media each trace refers
    to, before it (a blob gone missing is logged and left out)."""
    wanted = frozenset(kinds)
    after = None
    sessions: set[str] = set()  # sessions whose own scores went out already
    done = Progress()

    def one_page(conn: Conn) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        d = conn.dialect
        keys = store.lifecycle.export_trace_ids(conn, project_id, query, after=after, limit=page)
        out: list[tuple[str, dict[str, Any]]] = []
        new_sessions: list[str] = []
        for _ts, trace_id in keys:
            row = store.traces.get_trace(conn, project_id, trace_id)
            if row is None:
                continue
            if "media" in wanted and blobs is not None:
                media = store.media.media_of_trace(conn, project_id, trace_id)
                out += [("media", m) for m in _media_records(d, media, trace_id, blobs)]
            if "trace" in wanted:
                out.append(("trace", trace_json(d, row, project_id)))
            if "observation" in wanted:
                out += [
                    ("observation", observation_json(d, o))
                    for o in store.traces.observations_of(conn, project_id, trace_id)
                ]
            if "score" in wanted:
                out += [
                    ("score", score_json(d, s))
                    for s in store.traces.scores_of(conn, project_id, trace_id)
                ]
            sid = row.get("session_id")
            if sid and sid not in sessions:
                sessions.add(sid)
                new_sessions.append(sid)
        if "score" in wanted and new_sessions:
            out += [
                ("score", score_json(d, s))
                for s in store.lifecycle.session_scores(conn, project_id, new_sessions)
            ]
        return keys, out

    while True:
        keys, items = read(one_page)
        for kind, item in items:
            done.counts[kind] += 1
            yield kind, item
        if progress is not None:
            progress(done)
        if len(keys) < page:
            return
        after = keys[-1]


def _media_records(
    d: Any, rows: list[dict[str, Any]], trace_id: str, blobs: Callable[[str], bytes]
) -> Iterator[dict[str, Any]]:
    """The uploaded media of a trace as export records, their bytes in base64."""
    for m in rows:
        if m["uploaded_at"] is None:
            continue
        try:
            data = blobs(m["sha256"])
        except (FileNotFoundError, OSError) as exc:
            log.warning("export: media %s has no bytes in storage (%s)", m["id"], exc)
            continue
        yield {
            "id": m["id"],
            "traceId": trace_id,
            "contentType": m["content_type"],
            "contentLength": m["content_length"],
            "sha256Hash": base64.b64encode(bytes.fromhex(m["sha256"])).decode(),
            "uploadedAt": d.ts_out(m["uploaded_at"]),
            "base64": base64.b64encode(data).decode(),
        }


def jsonl(items: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    """JSON lines, about 64 KiB per chunk."""
    buf: list[bytes] = []
    size = 0
    for kind, item in items:
        line = _json.dumpb({"type": kind, "data": item}) + b"\n"
        buf.append(line)
        size += len(line)
        if size >= 65536:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _cell(value: Any) -> Any:
    return _json.dumps(value) if isinstance(value, (dict, list)) else value


#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A CSV cell: text a spreadsheet would run as a formula (``=HYPERLINK(...)``,
    ``+1+cmd|...``) gets a leading ``'``, so it shows as text; numbers, negative ones
    too, stay numbers."""
    if value is None:
        return ""
    value = _cell(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _rows_of(
    items: Iterable[tuple[str, dict[str, Any]]], kind: str, size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for k, item in items:
        if k == kind:
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def csv_rows(items: Iterable[tuple[str, dict[str, Any]]], kind: str) -> Iterator[bytes]:
    """CSV of one kind: a header of the API fields, then one row per record."""
    columns: list[str] | None = None
    for chunk in _rows_of(items, kind):
        buf = io.StringIO()
        writer = csv.writer(buf)
        if columns is None:
            columns = list(chunk[0])
            writer.writerow(columns)
        for item in chunk:
            writer.writerow([_csv_cell(item.get(c)) for c in columns])
        yield buf.getvalue().encode()


class _Sink(io.RawIOBase):
    """A write-only file whose bytes the Parquet writer's caller takes as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def _arrow_type(values: list[Any]) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def _coerce(value: Any, kind: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if kind == pa.string():
        return value if isinstance(value, str) else _json.dumps(value)
    if kind == pa.float64():
        return float(value) if isinstance(value, (int, float)) else None
    return bool(value)


def parquet_rows(items: Iterable[tuple[str, dict[str, Any]]], kind: str) -> Iterator[bytes]:
    """Parquet of one kind: a row group per 1,000 records, bytes as they are written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _Sink()
    writer = None
    schema = None
    for chunk in _rows_of(items, kind):
        if schema is None:
            columns = list(chunk[0])
            schema = pa.schema([(c, _arrow_type([r.get(c) for r in chunk])) for c in columns])
            writer = pq.ParquetWriter(sink, schema)
        arrays = {
            f.name: pa.array([_coerce(r.get(f.name), f.type) for r in chunk], type=f.type)
            for f in schema
        }
        assert writer is not None
        writer.write_table(pa.table(arrays, schema=schema))
        yield sink.take()
    if writer is None:  # no record: an empty file with no columns
        writer = pq.ParquetWriter(sink, pa.schema([]))
    writer.close()
    yield sink.take()


def encode(items: Iterable[tuple[str, dict[str, Any]]], fmt: str, kind: str) -> Iterator[bytes]:
    """The export's bytes in format ``fmt`` (for csv and parquet: records of ``kind``)."""
    if fmt == "jsonl":
        return jsonl(items)
    if fmt == "csv":
        return csv_rows(items, kind)
    return parquet_rows(items, kind)


def export_query(params: Any) -> TraceQuery:
    """The trace list's filters from query parameters (``userId``, ``name``,
    ``sessionId``, ``fromTimestamp``, ``toTimestamp``, ``tags``, ``version``,
    ``release``, ``environment``, ``filter``; empty values are left out, as a form
    sends them)."""

    def one(name: str) -> str | None:
        return params.get(name) or None

    def many(name: str) -> tuple[str, ...]:
        return tuple(v for v in params.getlist(name) if v)

    return TraceQuery(
        user_id=one("userId"),
        name=one("name"),
        session_id=one("sessionId"),
        from_timestamp=parse_time(one("fromTimestamp"), "fromTimestamp"),
        to_timestamp=parse_time(one("toTimestamp"), "toTimestamp"),
        tags=many("tags"),
        version=one("version"),
        release=one("release"),
        environments=many("environment"),
        filters=parse_filter(one("filter")),
    )


def export_choice(fmt: str | None, kind: str | None) -> tuple[str, str]:
    """``(format, kind)`` checked: 400 naming the parameter otherwise."""
    fmt = fmt or "jsonl"
    if fmt not in FORMATS:
        raise InvalidRequestData(f"format: one of {', '.join(FORMATS)}")
    kind = kind or "trace"
    if kind not in KINDS:
        raise InvalidRequestData(f"kind: one of {', '.join(KINDS)}")
    return fmt, kind


def streamed(
    store: Store,
    read: Read[Any],
    project_id: str,
    params: Any,
    blobs: Callable[[str], bytes] | None = None,
) -> StreamingResponse:
    """The export the query parameters ask for (``format``, ``kind`` and the trace
    list's filters; a 400 for a bad one) as a streamed download, with a log line every
    10,000 records (the API's route and the dashboard's link); a JSONL export holds
    the media's bytes read with ``blobs``."""
    fmt, kind = export_choice(params.get("format") or None, params.get("kind") or None)
    query = export_query(params)
    # The filter's columns and values are checked now, so a bad one is a 400 rather
    # than a stream cut after its 200 status went out.
    read(lambda conn: store.evaluations.check_trace_filter(conn, query.conditions()))
    logged = [0]

    def progress(p: Progress) -> None:
        done = sum(p.counts.values())
        if done // 10000 > logged[0]:
            logged[0] = done // 10000
            log.info("export of project %s: %s so far", project_id, p.line())

    kinds = JSONL_KINDS if fmt == "jsonl" else (kind,)
    items = records(store, read, project_id, query, kinds=kinds, progress=progress, blobs=blobs)
    suffix = "jsonl" if fmt == "jsonl" else f"{kind}s.{fmt}"
    return StreamingResponse(
        encode(items, fmt, kind),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="lanterna-{project_id}.{suffix}"'},
    )
