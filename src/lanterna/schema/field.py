"""What a field table is made of: :class:`Field` (one line per field) and :class:`Entity`.

A field is named once, here, with everything the layers above derive from it: the
column and its storage kind (``store/tables.py``), the ``filter`` whitelist
(``store/filters.py``), the API shapes (``server/shapes.py``) and the limits both wire
formats apply (``ingest/``). The derived tuples are built when an :class:`Entity` is
made (at import), so nothing on a hot path inspects fields one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# --- value kinds ------------------------------------------------------------------------
#: Text (a string).
TEXT = "text"
#: An id: 1 to ``max_chars`` characters without carriage returns.
ID = "id"
#: A version: a string, or a number sent for one (stored as its text).
VERSION = "version"
#: One of ``Field.choices``.
ENUM = "enum"
#: An instant (ISO-8601 with offset on the wire; aware datetime in a record).
TIMESTAMP = "timestamp"
#: Any JSON value.
JSON = "json"
#: A JSON object.
OBJECT = "object"
#: A list of strings, kept as a sorted set.
STRINGS = "strings"
BOOL = "bool"
NUMBER = "number"
INT = "int"
KINDS = (TEXT, ID, VERSION, ENUM, TIMESTAMP, JSON, OBJECT, STRINGS, BOOL, NUMBER, INT)

# --- how each kind is stored (the dialect converts TS/JSON/BOOL; None: bound as is) ------
STORE_TS = "ts"
STORE_JSON = "json"
STORE_BOOL = "bool"
STORAGE: dict[str, str | None] = {
    TIMESTAMP: STORE_TS,
    JSON: STORE_JSON,
    OBJECT: STORE_JSON,
    STRINGS: STORE_JSON,
    BOOL: STORE_BOOL,
}

#: The ``filter`` column kind (``store.filters.Kind``) a filterable field of each kind gets.
FILTER_KIND: dict[str, str] = {
    TEXT: "string",
    ID: "string",
    VERSION: "string",
    ENUM: "string",
    TIMESTAMP: "datetime",
    JSON: "object",
    OBJECT: "object",
    STRINGS: "array",
    BOOL: "boolean",
    NUMBER: "number",
    INT: "number",
}

# --- how the ingestion JSON path reads a field -------------------------------------------
#: Read from the event body by its kind (``ingest.langfuse_events``), limits applied.
AUTO = "auto"
#: Read by hand in the wire-format module (normalised, or derived from other keys).
HAND = "hand"
#: Never sent by a client: set by the server (ids, timestamps of rows, derived values).
SERVER = "server"

# --- limits that keep indexed text under PostgreSQL's B-tree entry size (~2,700 bytes) ---
#: Names, user ids, releases: characters and UTF-8 bytes.
KEY_CHARS = 1000
KEY_BYTES = 2000
#: Ids: characters (and the same UTF-8 byte bound as keys).
ID_CHARS = 800


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an entity, as every layer sees it.

    ``api`` is the camelCase name on the wire (event bodies, API JSON, ``filter``
    columns); None for a column the API never shows. ``max_chars``/``max_bytes`` are
    the limits both wire formats apply (the Langfuse JSON path refuses the event with a
    400, OTLP cuts the value so no span is lost). ``filter`` makes the column filterable
    under its API name (and ``filter_aliases``) with the filter kind of its value kind.
    ``shape`` puts it in the entity's API object (converted by kind, ``empty()`` for a
    null or empty value); False means the shape writes it by hand. ``group`` is the
    field group of the cursor API (observations v2, scores v3) that returns it as is
    (``core``: always). ``generation`` fields are read only from generation-like events.
    ``otlp`` names span attributes an OTLP span may carry the field in (the first one
    present wins), for fields the OTLP mapping does not read by hand. ``lazy`` columns
    are read by the cursor API only when their group is asked for.
    """

    column: str
    api: str | None
    kind: str
    max_chars: int | None = None
    max_bytes: int | None = None
    filter: bool = False
    filter_aliases: tuple[str, ...] = ()
    read: str = AUTO
    generation: bool = False
    shape: bool = True
    empty: Callable[[], Any] | None = None
    group: str | None = None
    choices: tuple[str, ...] = ()
    otlp: tuple[str, ...] = ()
    lazy: bool = False
    #: A column of the row, not of the record merged from events (id, project, row times).
    system: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.column}: unknown kind {self.kind!r}")
        if self.kind == ENUM and not self.choices:
            raise ValueError(f"{self.column}: an enum needs choices")

    @property
    def storage(self) -> str | None:
        """How the column is stored: ``ts``, ``json``, ``bool`` or None (as is)."""
        return STORAGE.get(self.kind)


def key(column: str, api: str, **more: Any) -> Field:
    """A text field that is indexed: at most 1,000 characters and 2,000 UTF-8 bytes."""
    return Field(column, api, TEXT, max_chars=KEY_CHARS, max_bytes=KEY_BYTES, **more)


def ident(column: str, api: str, **more: Any) -> Field:
    """An id field: 1 to 800 characters, at most 2,000 UTF-8 bytes."""
    return Field(column, api, ID, max_chars=ID_CHARS, max_bytes=KEY_BYTES, **more)


def system(column: str, api: str, kind: str, **more: Any) -> Field:
    """A column the server sets on every row (never read from an event)."""
    return Field(column, api, kind, read=SERVER, system=True, **more)


class Entity:
    """The field table of one entity and what is derived from it (once, here)."""

    def __init__(self, name: str, table: str, alias: str, fields: tuple[Field, ...]) -> None:
        self.name = name
        self.table = table
        #: The table's alias in the store's queries (``t``, ``o``, ``s``).
        self.alias = alias
        self.fields = fields
        self.by_column: dict[str, Field] = {f.column: f for f in fields}
        if len(self.by_column) != len(fields):
            raise ValueError(f"{name}: a column is named twice")
        #: ``column -> storage`` of the record merged from events, in table order.
        self.record_columns: dict[str, str | None] = {
            f.column: f.storage for f in fields if not f.system
        }
        #: ``filter`` name -> (column, filter kind).
        self.filters: dict[str, tuple[str, str]] = {}
        for f in fields:
            if f.filter and f.api is not None:
                for name_ in (f.api, *f.filter_aliases):
                    self.filters[name_] = (f.column, FILTER_KIND[f.kind])
        #: Fields the ingestion JSON path reads by kind (``generation`` ones separate).
        self.auto: tuple[Field, ...] = tuple(
            f for f in fields if f.read == AUTO and f.api and not f.generation
        )
        self.auto_generation: tuple[Field, ...] = tuple(
            f for f in fields if f.read == AUTO and f.api and f.generation
        )
        #: Fields the OTLP mapping reads from the span attributes named in ``otlp``.
        self.otlp: tuple[Field, ...] = tuple(f for f in fields if f.otlp)
        #: (api, column, kind, empty) of the fields the API object shows as they are.
        self.shape: tuple[tuple[str, str, str, Callable[[], Any] | None], ...] = tuple(
            (f.api, f.column, f.kind, f.empty) for f in fields if f.shape and f.api
        )
        #: Per cursor-API group, the same for the fields it returns as they are.
        groups: dict[str, list[tuple[str, str, str, Callable[[], Any] | None]]] = {}
        for f in fields:
            if f.group is not None and f.api:
                groups.setdefault(f.group, []).append((f.api, f.column, f.kind, f.empty))
        self.groups = {g: tuple(items) for g, items in groups.items()}
        #: Columns the cursor API always reads (``lazy`` ones only for their group).
        self.eager_columns: tuple[str, ...] = tuple(f.column for f in fields if not f.lazy)

    def __getitem__(self, column: str) -> Field:
        return self.by_column[column]

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, {len(self.fields)} fields)"
