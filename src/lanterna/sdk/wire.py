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

from .records import Observation, freeze

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


_dumps_str = orjson.dumps


def _dumps(value: Any) -> bytes:
    """``value`` as JSON, the bytes ``orjson.dumps(value, default=str, option=OPTS)``
    writes (the reference encoding's).

    First without options and ``default``: passing keywords costs orjson ~0.2 µs a
    call, and the options only change what orjson would otherwise refuse (keys other
    than text, numpy values, types it cannot encode, for ``default``), so the bytes of
    what it accepts are the same; what it refuses is asked again with them."""
    try:
        return _dumps_str(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(value, default=str, option=OPTS)


def _has_data_uri(value: Any, data: bytes) -> bool:
    """Could the media uploader replace something in ``value`` (encoded as ``data``)?

    It looks at strings starting with ``data:``; a string, or a dict of strings and
    scalars, is checked directly, anything deeper by searching the encoded bytes for a
    JSON string starting so (never a miss, sometimes a needless reference path), with
    ``find``: ``in`` on bytes first tries the needle as an integer and pays for the
    exception, several times the search itself."""
    kind = type(value)
    if kind is str:
        return bool(value.startswith("data:"))
    if kind is dict:
        for item in value.values():
            if type(item) is str:
                if item.startswith("data:"):
                    return True
            elif not (item is None or type(item) in _SCALARS):
                return data.find(_DATA_URI) >= 0
        return False
    return not (value is None or kind in _SCALARS) and data.find(_DATA_URI) >= 0


_ROOT, _END, _PARENT, _INPUT, _OUTPUT, _TAIL, _EXTRA = 1, 2, 4, 8, 16, 32, 64
# Three decimal digits, for the milliseconds and microseconds of timestamps: a tuple
# lookup is several times cheaper than ``%06d`` (bytes %-formatting of an int goes
# through a str).
_D3 = tuple(b"%03d" % i for i in range(1000))


class FastEncoder:
    """Encodes common observations without building event dicts (module docstring).

    One per exporter, used by its thread only. Each record is one ``bytes %`` over a
    template chosen by the record's shape (root or not, ended, parent, input, output,
    further fields), built once per shape with environment and release baked in; every
    argument is bytes already (``%s`` only: formatting an int in a template costs about
    as much as the rest of it). An envelope id is a random 64-bit prefix drawn per batch
    (:meth:`new_batch`; one for trace-create events, another for the rest) followed by
    the observation's own random 64-bit id: as unique as random 128-bit ids within and
    across batches, for two random draws per batch, and the id's hex digits serve twice.
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
        # The last millisecond formatted (``YYYY-MM-DDTHH:MM:SS.mmm``): a record's start
        # and end, and consecutive records, mostly fall in the same one.
        self._ms = -1
        self._ms_text = b""
        self._prefix = b""
        self._trace_prefix = b""
        # The last trace id formatted: a trace's records are mostly queued together.
        self._tid = -1
        self._tid_hex = b""
        # The last parent id formatted: siblings are mostly queued together.
        self._parent = -1
        self._parent_hex = b""
        self._child = self._template(_END | _PARENT)
        self._single = self._template(_ROOT | _END)

    def new_batch(self) -> None:
        """Draw new random prefixes for envelope ids (observations', trace-creates')."""
        self._prefix = b"%016x" % self._bits(64)
        self._trace_prefix = self._prefix
        while self._trace_prefix == self._prefix:
            self._trace_prefix = b"%016x" % self._bits(64)

    def _millis(self, ms: int) -> bytes:
        """``YYYY-MM-DDTHH:MM:SS.mmm`` of a Unix millisecond (the last one cached)."""
        second, milli = divmod(ms, 1000)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
            self._second = second
        text = self._ms_text = b"%s.%s" % (self._second_text, _D3[milli])
        self._ms = ms
        return text

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
        """The ``bytes %`` template of one shape (see :meth:`record` for its args)."""
        stamp = b'"%sZ"'
        out = b""
        if shape & _ROOT:
            out += (
                b'{"id":"%s%s","type":"trace-create","timestamp":' + stamp + b',"body":'
                b'{"id":"%s","timestamp":' + stamp + b',"name":%s'
            )
            if shape & _INPUT:
                out += b',"input":%s'
            if shape & _OUTPUT:
                out += b',"output":%s'
            out += self._env + self._release + b"}},"
        out += (
            b'{"id":"%s%s","type":%s,"timestamp":' + stamp + b',"body":'
            b'{"id":"%s","traceId":"%s","name":%s,"startTime":' + stamp
        )
        if shape & _END:
            out += b',"endTime":' + stamp
        if shape & _PARENT:
            out += b',"parentObservationId":"%s"'
        if shape & _INPUT:
            out += b',"input":%s'
        if shape & _OUTPUT:
            out += b',"output":%s'
        if shape & _TAIL:
            out += b"%s"
        elif shape & _EXTRA:
            out += b",%s"
        out += self._env + b"}}"
        self._templates[shape] = out
        return out

    def observation(self, obs: Observation) -> tuple[bytes, int] | None:
        """The events of ``obs`` (:meth:`record` of it frozen, see
        :func:`~lanterna.sdk.records.freeze`), and how many; None: the reference path."""
        rec = freeze(obs)
        data = None if rec is None else self.record(rec)
        return None if data is None else (data, 2 if rec[7] else 1)  # type: ignore[index]

    def record(self, rec: tuple[Any, ...]) -> bytes | None:
        """A frozen record's events, comma-joined: two (trace-create and the
        observation's) for a trace's root, else one. None: use the reference path
        (:func:`~lanterna.sdk.records.thaw`, then ``to_events``)."""
        (
            tid,
            oid,
            parent,
            kind,
            name,
            start,
            end,
            root,
            value_in,
            value_out,
            meta,
            level,
            status,
            extra,
            _,
        ) = rec
        if type(tid) is not int or type(oid) is not int:
            return None
        if parent is not None and type(parent) is not int:
            return None
        if extra and not _OWN_FIELDS.isdisjoint(extra):
            return None
        try:
            if tid == self._tid:
                tid_hex = self._tid_hex
            else:
                # 4x faster than b"%032x" % tid (which formats through a str)
                tid_hex = self._tid_hex = hexlify(tid.to_bytes(16, "big"))
                self._tid = tid
            oid_hex = hexlify(oid.to_bytes(8, "big"))
            name_text = self._names.get(name) or self._name(name)
            ms, micro = divmod(start // 1000, 1000)
            start_text = (self._ms_text if ms == self._ms else self._millis(ms)) + _D3[micro]
            if end:
                ms, micro = divmod(end // 1000, 1000)
                end_text = (self._ms_text if ms == self._ms else self._millis(ms)) + _D3[micro]
            else:
                end_text = start_text
            if parent is None:
                parent_hex = b""
            elif parent == self._parent:
                parent_hex = self._parent_hex
            else:
                parent_hex = self._parent_hex = hexlify(parent.to_bytes(8, "big"))
                self._parent = parent
            typ = self._types.get(kind) or self._type(kind)
            if (
                end
                and value_in is None
                and value_out is None
                and not extra
                and not meta
                and level is None
                and status is None
            ):
                # The commonest shapes (a call without arguments or result): the child
                # of an observation, or a trace's only observation; one tuple, no list.
                if parent is not None and not root:
                    return self._child % (
                        self._prefix,
                        oid_hex,
                        typ,
                        end_text,
                        oid_hex,
                        tid_hex,
                        name_text,
                        start_text,
                        end_text,
                        parent_hex,
                    )
                if root and parent is None:
                    return self._single % (
                        self._trace_prefix,
                        oid_hex,
                        end_text,
                        tid_hex,
                        start_text,
                        name_text,
                        self._prefix,
                        oid_hex,
                        typ,
                        end_text,
                        oid_hex,
                        tid_hex,
                        name_text,
                        start_text,
                        end_text,
                    )
            # Strings (most outputs, many inputs) straight to orjson, and their data-URI
            # check inline; the media uploader replaces strings starting with "data:".
            media = self._media
            uri = False
            if value_in is None:
                data_in = b""
            elif type(value_in) is str:
                data_in = _dumps_str(value_in)
                uri = media and value_in.startswith("data:")
            else:
                data_in = _dumps(value_in)
                uri = media and _has_data_uri(value_in, data_in)
            if value_out is None:
                data_out = b""
            elif type(value_out) is str:
                data_out = _dumps_str(value_out)
                uri = uri or (media and value_out.startswith("data:"))
            else:
                data_out = _dumps(value_out)
                uri = uri or (media and _has_data_uri(value_out, data_out))
            if uri:
                return None
            if end and data_in and data_out and not meta and level is None and status is None:
                # A call with arguments and a result (a generation's model and usage
                # maybe too): a trace's only observation, or a child; one tuple, no list.
                values: tuple[bytes, ...] | None
                if root and parent is None:
                    shape = _ROOT | _END | _INPUT | _OUTPUT
                    values = (
                        self._trace_prefix,
                        oid_hex,
                        end_text,
                        tid_hex,
                        start_text,
                        name_text,
                        data_in,
                        data_out,
                        self._prefix,
                        oid_hex,
                        typ,
                        end_text,
                        oid_hex,
                        tid_hex,
                        name_text,
                        start_text,
                        end_text,
                        data_in,
                        data_out,
                    )
                elif parent is not None and not root:
                    shape = _END | _PARENT | _INPUT | _OUTPUT
                    values = (
                        self._prefix,
                        oid_hex,
                        typ,
                        end_text,
                        oid_hex,
                        tid_hex,
                        name_text,
                        start_text,
                        end_text,
                        parent_hex,
                        data_in,
                        data_out,
                    )
                else:
                    values = None
                if values is not None:
                    if extra:
                        shape |= _EXTRA
                        values += (_dumps(extra)[1:-1],)
                    return (self._templates.get(shape) or self._template(shape)) % values
            args: list[bytes]
            shape = 0
            if root:
                shape = _ROOT
                args = [self._trace_prefix, oid_hex, end_text, tid_hex, start_text, name_text]
                if data_in:
                    args.append(data_in)
                if data_out:
                    args.append(data_out)
            else:
                args = []
            args += (self._prefix, oid_hex, typ, end_text, oid_hex, tid_hex, name_text, start_text)
            if end:
                shape |= _END
                args.append(end_text)
            if parent is not None:
                shape |= _PARENT
                args.append(parent_hex)
            if data_in:
                shape |= _INPUT
                args.append(data_in)
            if data_out:
                shape |= _OUTPUT
                args.append(data_out)
            if meta or level is not None or status is not None:
                tail = self._tail(meta, level, status, extra)
                if tail is None:
                    return None
                shape |= _TAIL
                args.append(tail)
            elif extra:
                # Further wire fields alone (a generation's model, usage, costs): the
                # object's members, written after a comma the template holds.
                shape |= _EXTRA
                args.append(_dumps(extra)[1:-1])
            template = self._templates.get(shape) or self._template(shape)
            return template % tuple(args)
        except (TypeError, OverflowError, orjson.JSONEncodeError):
            return None  # the reference path falls back to the standard library

    def _tail(self, meta: Any, level: Any, status: Any, extra: Any) -> bytes | None:
        """Metadata, level, status message and further wire fields, in the reference's
        order; None when the metadata holds a data URI (the media uploader's job)."""
        out = b""
        if meta:
            data = _dumps(meta)
            if self._media and _has_data_uri(meta, data):
                return None
            out += b',"metadata":' + data
        if level is not None:
            out += b',"level":' + _dumps(level)
        if status is not None:
            out += b',"statusMessage":' + _dumps(status)
        if extra:
            out += b"," + _dumps(extra)[1:-1]
        return out
