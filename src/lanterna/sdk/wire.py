"""Records straight to ingestion-event bytes, on the exporter thread.

The reference encoding of a record is ``record.to_events(options)`` (dicts, see
``records.py``) passed to orjson. For the record nearly every call makes -- an
:class:`~lanterna.sdk.records.Observation` with integer ids, no trace fields to merge
and no ``mask`` callback -- :class:`FastEncoder` writes the very same bytes from a few
byte templates instead: ids and timestamps are formatted into the template from their
raw integers, names and event types are encoded once and cached, and each captured
value is encoded by orjson exactly once. Anything else (a given text id, trace fields, a
``mask``, wire fields that override the record's own, a value orjson cannot encode, a
base64 data URI for the media uploader, an event over the size limit) returns None and
takes the reference path, so behaviour never depends on which path ran. Tests check
that both paths produce identical bytes for every observation type.
"""

from __future__ import annotations

import time
from binascii import hexlify
from typing import TYPE_CHECKING, Any

import orjson

from .records import Observation

if TYPE_CHECKING:
    from .records import EventOptions

OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

# Wire fields a record sets itself: extra fields with these names override them in the
# reference encoding (same key, new value), which the templates do not reproduce.
_OWN_FIELDS = frozenset(
    {
        "id",
        "traceId",
        "name",
        "startTime",
        "endTime",
        "parentObservationId",
        "input",
        "output",
        "metadata",
        "level",
        "statusMessage",
        "environment",
    }
)
# What the media uploader replaces: a JSON string that starts with "data:".
_DATA_URI = b'"data:'
_SCALARS = (int, float, bool)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=OPTS)


def _has_data_uri(value: Any, data: bytes) -> bool:
    """Could the media uploader replace something in ``value`` (encoded as ``data``)?

    It looks at strings starting with ``data:``; a string, or a dict of strings and
    scalars, is checked directly, anything deeper by searching the encoded bytes for a
    JSON string starting so (never a miss, sometimes a needless reference path)."""
    kind = type(value)
    if kind is str:
        return bool(value.startswith("data:"))
    if kind is dict:
        for item in value.values():
            if type(item) is str:
                if item.startswith("data:"):
                    return True
            elif not (item is None or type(item) in _SCALARS):
                return _DATA_URI in data
        return False
    return not (value is None or kind in _SCALARS) and _DATA_URI in data


_ROOT, _END, _PARENT, _INPUT, _OUTPUT, _TAIL = 1, 2, 4, 8, 16, 32


class FastEncoder:
    """Encodes common observations without building event dicts (module docstring).

    One per exporter, used by its thread only. Each record is one ``bytes %`` over a
    template chosen by the record's shape (root or not, ended, parent, input, output,
    further fields), built once per shape with environment and release baked in.
    Envelope ids are a random 96-bit prefix per batch (:meth:`new_batch`) and a 32-bit
    counter: as unique as random ids, for one random draw per batch.
    """

    def __init__(self, options: EventOptions) -> None:
        from .records import _bits

        self._bits = _bits
        self._media = options.media is not None
        env = options.environment
        self._env = (b',"environment":' + _dumps(env) if env else b"").replace(b"%", b"%%")
        release = options.release
        self._release = (b',"release":' + _dumps(release) if release else b"").replace(b"%", b"%%")
        self._templates: dict[int, bytes] = {}
        self._names: dict[str, bytes] = {}
        self._types: dict[str, bytes] = {}
        self._second = -1
        self._second_text = b""
        self._prefix = b""
        self._count = 0
        # The last trace id formatted: a trace's records are mostly queued together.
        self._tid = -1
        self._tid_hex = b""

    def new_batch(self) -> None:
        """Draw a new random prefix for envelope ids."""
        self._prefix = b"%024x" % self._bits(96)
        self._count = 0

    def _seconds(self, second: int) -> bytes:
        """``YYYY-MM-DDTHH:MM:SS`` of a Unix second (the last one cached)."""
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
            self._second = second
        return self._second_text

    def _name(self, name: Any) -> bytes:
        cached = self._names.get(name) if type(name) is str else None
        if cached is None:
            cached = _dumps(name)
            if type(name) is str and len(self._names) < 10_000:
                self._names[name] = cached
        return cached

    def _type(self, kind: str) -> bytes:
        cached = self._types.get(kind)
        if cached is None:
            cached = _dumps(f"{kind}-create")
            self._types[kind] = cached
        return cached

    def _template(self, shape: int) -> bytes:
        """The ``bytes %`` template of one shape (see :meth:`observation` for its args)."""
        stamp = b'"%s.%06dZ"'
        out = b""
        if shape & _ROOT:
            out += (
                b'{"id":"%s%08x","type":"trace-create","timestamp":' + stamp + b',"body":'
                b'{"id":"%s","timestamp":' + stamp + b',"name":%s'
            )
            if shape & _INPUT:
                out += b',"input":%s'
            if shape & _OUTPUT:
                out += b',"output":%s'
            out += self._env + self._release + b"}},"
        out += (
            b'{"id":"%s%08x","type":%s,"timestamp":' + stamp + b',"body":'
            b'{"id":"%016x","traceId":"%s","name":%s,"startTime":' + stamp
        )
        if shape & _END:
            out += b',"endTime":' + stamp
        if shape & _PARENT:
            out += b',"parentObservationId":"%016x"'
        if shape & _INPUT:
            out += b',"input":%s'
        if shape & _OUTPUT:
            out += b',"output":%s'
        if shape & _TAIL:
            out += b"%s"
        out += self._env + b"}}"
        self._templates[shape] = out
        return out

    def observation(self, obs: Observation) -> tuple[bytes, int] | None:
        """The record's events, comma-joined, and how many; None: use the reference path."""
        trace = obs.trace
        tid, oid, parent = trace.tid, obs.oid, obs.parent_id
        if type(tid) is not int or type(oid) is not int:
            return None
        if parent is not None and type(parent) is not int:
            return None
        extra = obs.extra
        if extra and not _OWN_FIELDS.isdisjoint(extra):
            return None
        top = obs.top
        if top and trace.fields:
            return None
        try:
            if tid == self._tid:
                tid_hex = self._tid_hex
            else:
                # 4x faster than b"%032x" % tid (which formats through a str)
                tid_hex = self._tid_hex = hexlify(tid.to_bytes(16, "big"))
                self._tid = tid
            name = self._names.get(obs.name) or self._name(obs.name)
            shape = 0
            second, fraction = divmod(obs.start // 1000, 1_000_000)
            start_text = self._second_text if second == self._second else self._seconds(second)
            end = obs.end
            if end:
                shape = _END
                end_second, end_fraction = divmod(end // 1000, 1_000_000)
                end_text = start_text if end_second == second else self._seconds(end_second)
            else:
                end_text, end_fraction = start_text, fraction
            prefix = self._prefix
            count = self._count
            args: list[Any]
            value = obs.input
            data_in = b"" if value is None else _dumps(value)
            value = obs.output
            data_out = b"" if value is None else _dumps(value)
            if self._media and (
                (data_in and _has_data_uri(obs.input, data_in))
                or (data_out and _has_data_uri(obs.output, data_out))
            ):
                return None
            if (
                end
                and not data_in
                and not data_out
                and not extra
                and not obs.metadata
                and obs.level is None
                and obs.status is None
            ):
                # The commonest shapes (a call without arguments or result): the child
                # of an observation, or a trace's only observation; one tuple, no list.
                # Written out in full on purpose: building the shared part as a tuple
                # and unpacking it cost 0.3 µs a record (a tenth of the encoding).
                typ = self._types.get(obs.kind) or self._type(obs.kind)
                if parent is not None and not top:
                    self._count = count + 1
                    template = self._templates.get(_END | _PARENT) or self._template(_END | _PARENT)
                    return template % (
                        prefix,
                        count + 1,
                        typ,
                        end_text,
                        end_fraction,
                        oid,
                        tid_hex,
                        name,
                        start_text,
                        fraction,
                        end_text,
                        end_fraction,
                        parent,
                    ), 1
                if top and trace.root_id == oid:
                    self._count = count + 2
                    template = self._templates.get(_ROOT | _END) or self._template(_ROOT | _END)
                    return template % (
                        prefix,
                        count + 1,
                        end_text,
                        end_fraction,
                        tid_hex,
                        start_text,
                        fraction,
                        name,
                        prefix,
                        count + 2,
                        typ,
                        end_text,
                        end_fraction,
                        oid,
                        tid_hex,
                        name,
                        start_text,
                        fraction,
                        end_text,
                        end_fraction,
                    ), 2
            if top and trace.root_id == oid:
                shape |= _ROOT
                count += 1
                args = [prefix, count, end_text, end_fraction, tid_hex, start_text, fraction, name]
                if data_in:
                    args.append(data_in)
                if data_out:
                    args.append(data_out)
                n = 2
            else:
                args = []
                n = 1
            count += 1
            self._count = count
            args += (
                prefix,
                count,
                self._types.get(obs.kind) or self._type(obs.kind),
                end_text,
                end_fraction,
                oid,
                tid_hex,
                name,
                start_text,
                fraction,
            )
            if end:
                args.append(end_text)
                args.append(end_fraction)
            if parent is not None:
                shape |= _PARENT
                args.append(parent)
            if data_in:
                shape |= _INPUT
                args.append(data_in)
            if data_out:
                shape |= _OUTPUT
                args.append(data_out)
            if extra or obs.metadata or obs.level is not None or obs.status is not None:
                tail = self._tail(obs)
                if tail is None:
                    return None
                shape |= _TAIL
                args.append(tail)
            template = self._templates.get(shape) or self._template(shape)
            return template % tuple(args), n
        except (TypeError, orjson.JSONEncodeError):
            return None  # the reference path falls back to the standard library

    def _tail(self, obs: Observation) -> bytes | None:
        """Metadata, level, status message and further wire fields, in the reference's
        order; None when the metadata holds a data URI (the media uploader's job)."""
        out = b""
        if obs.metadata:
            data = _dumps(obs.metadata)
            if self._media and _has_data_uri(obs.metadata, data):
                return None
            out += b',"metadata":' + data
        if obs.level is not None:
            out += b',"level":' + _dumps(obs.level)
        if obs.status is not None:
            out += b',"statusMessage":' + _dumps(obs.status)
        if obs.extra:
            out += b"," + _dumps(obs.extra)[1:-1]
        return out
