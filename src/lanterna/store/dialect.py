"""Every SQLite/PostgreSQL difference, each in one small named helper.

Store code writes SQL once, with ``?`` placeholders and portable syntax
(``INSERT ... ON CONFLICT ... DO UPDATE`` works on both), and asks the dialect for the
few things that differ: placeholders, timestamps, JSON columns and JSON predicates,
column types in migrations, and how a write transaction takes the database's write lock.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from functools import lru_cache
from typing import Any

from .. import _json
from ..timeutil import UTC, format_ts

#: SQLite's ``unixepoch()`` (3.38 on); older libraries use ``strftime('%s', ...)``
_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38)


class Dialect:
    """The SQLite flavour; :class:`PostgresDialect` overrides what differs."""

    name = "sqlite"
    #: What ends a subquery in FROM so that the planner computes its columns once per
    #: row instead of merging it into the outer query, where every use of a column
    #: repeats its expression (a latency from text timestamps in ``SUM``, ``COUNT`` and
    #: a collection: three times). ``LIMIT -1`` is no limit on SQLite.
    subquery_fence = " LIMIT -1"
    #: Rows per multi-row INSERT when writing many. SQLite runs a statement in one
    #: call, so larger statements mean fewer GIL round trips than ``executemany``.
    insert_rows = 64
    #: Statements the writer runs once on its connection.
    writer_setup: tuple[str, ...] = ()
    #: What the ``{TS}``, ``{JSON}``, ``{BOOL}`` and ``{FLOAT}`` slots of migrations
    #: become; ``{CLUSTERED}`` after a table's closing parenthesis stores its rows in
    #: its primary key's B-tree (SQLite's ``WITHOUT ROWID``: one tree to update, not two).
    column_types = {
        "TS": "TEXT",
        "JSON": "TEXT",
        "BOOL": "INTEGER",
        "FLOAT": "REAL",
        "CLUSTERED": "WITHOUT ROWID",
    }
    #: After a SELECT: lock the rows read until the transaction ends. SQLite needs
    #: nothing (``BEGIN IMMEDIATE`` already holds the only write lock).
    for_update = ""
    #: Whether the write path keeps per-project row counts (``store/row_counts.py``),
    #: which an unfiltered list's total reads; a store without them (ClickHouse) sums
    #: its daily rollups' counts instead (``row_counts.count``).
    keeps_row_counts = True
    #: Whether each statement costs a lot whatever it reads (ClickHouse: its ``FINAL``
    #: views), so reads of many keys go in one statement rather than one per key or
    #: in short lists.
    few_statements = False
    #: The table (or view) to read a user's traces from, by ``project_id`` and
    #: ``user_id`` (columns ``id``, ``timestamp``, ``name``, ``session_id``): the
    #: traces themselves where an index finds a user's; ClickHouse keeps a copy ordered
    #: by user (``store/clickhouse/key_totals.py``).
    user_traces = "traces"
    #: Whether a join reads its right side whole before matching (ClickHouse's hash
    #: joins): a page of rows joined to a big table looks its few keys up instead.
    whole_right_joins = False
    #: Whether two reads on two connections run side by side in the database server
    #: (PostgreSQL: a process per connection), so that a read of two independent parts
    #: takes the longer one's time. SQLite's run in this process and compete for the
    #: interpreter: the trace list's totals row read in two parts at once took 92-136 ms
    #: at 10 M observations, against 69 ms in one.
    reads_beside = False

    def begin(self, *, exclusive: bool = False) -> str:
        """SQL that starts a write transaction holding the database's write lock.

        SQLite has one write lock: ``BEGIN IMMEDIATE`` takes it at once (waiting up to
        the connection's busy timeout for another writer to commit), so a transaction
        never fails half-way on a lock upgrade. ``exclusive`` changes nothing here.
        """
        return "BEGIN IMMEDIATE"

    def migration_lock(self) -> str | None:
        """SQL that makes migrators of several processes take turns (session-long),
        or None when :meth:`begin` already serialises them."""
        return None

    def json_array_index(self, name: str, table: str, column: str) -> str | None:
        """DDL for an index answering :meth:`json_array_contains` on ``column``, or None
        when the backend cannot index JSON array elements (SQLite)."""
        return None

    def tables_with_column(self) -> str:
        """SQL listing (as ``name``) the tables that have the column named by its one
        parameter (deleting a project sweeps every table with a ``project_id``)."""
        return (
            "SELECT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) c"
            " WHERE m.type = 'table' AND c.name = ?"
        )

    def sql(self, text: str) -> str:
        """SQL as the driver wants it (SQLite takes ``?`` as written)."""
        return text

    def ts(self, dt: datetime | None) -> Any:
        """A timestamp as bound to a query."""
        return None if dt is None else format_ts(dt)

    def ts_out(self, value: Any) -> str | None:
        """A stored timestamp as the API returns it (ISO-8601, UTC, ``Z``)."""
        if value is None:
            return None
        if isinstance(value, datetime):
            return format_ts(value)
        return str(value)

    def ts_parse(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware datetime."""
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    def json(self, value: Any) -> Any:
        """A JSON value as bound to a JSON column."""
        return None if value is None else _json.dumps(value)

    def json_out(self, value: Any) -> Any:
        """A JSON column as a Python value."""
        if value is None or not isinstance(value, (str, bytes)):
            return value
        return _json.loads(value)

    def json_array_contains(self, column: str) -> str:
        """SQL that is true when the JSON array ``column`` holds the bound string."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"

    def json_array_filter(self, column: str) -> tuple[str, int]:
        """:meth:`json_array_contains` for list filters over many rows, and how many
        times it binds the string.

        SQLite: a text search for the string as JSON encodes it (``json_quote`` writes
        what the stored arrays hold) before the exact ``json_each`` test, which costs
        several times more; the arrays of ``traces_time`` are in the index, so the
        rows that fail are never read."""
        return f"(instr({column}, json_quote(?)) > 0 AND {self.json_array_contains(column)})", 2

    def magnitude(self, cost: str) -> str:
        """SQL for :func:`magnitude` of the SQL expression ``cost``."""
        return f"lanterna_magnitude({cost})"

    def position(self, haystack: str, needle: str) -> str:
        """SQL for where text ``needle`` starts in ``haystack`` (1-based; 0: absent)."""
        return f"instr({haystack}, {needle})"

    def comma_list(self, column: str) -> str:
        """SQL aggregate: the distinct values of ``column``, comma-separated (any order)."""
        return f"group_concat(DISTINCT {column})"

    def event_rows(
        self, table: str, time_column: str, where: str, params: list[Any], alias: str = ""
    ) -> tuple[str, list[Any]]:
        """The condition selecting the rows of event table ``table`` (``traces``,
        ``observations``, ``scores``; ordered by ``time_column``) that ``where`` matches,
        and its parameters. ``where`` writes ``{a}`` before each of the table's columns
        (``alias``, e.g. ``"o."``, goes there) and ``{traces}`` for the traces table in
        a subquery. ClickHouse adds a narrowing by key
        (:class:`~lanterna.store.clickhouse.conn.ClickHouseDialect`)."""
        return where.format(a=alias, traces="traces"), params

    def by_index(self, table: str, index: str) -> str:
        """``table`` read through ``index``: SQLite's ``INDEXED BY`` where its planner,
        without statistics, would walk the primary key instead (a grouped join over one
        hour of traces read every trace of the project); PostgreSQL plans by its own
        statistics."""
        return f"{table} INDEXED BY {index}"

    def json_text_at(self, column: str) -> str:
        """SQL for the text of top-level key ``?`` (bound) in JSON object ``column``."""
        return f"json_extract({column}, '$.' || json_quote(?))"

    def json_number_at(self, column: str) -> str:
        """SQL for the number at top-level key ``?`` (bound twice) in JSON object
        ``column``; NULL when the value there is not a number."""
        key = "'$.' || json_quote(?)"
        return (
            f"(CASE WHEN json_type({column}, {key}) IN ('integer', 'real')"
            f" THEN json_extract({column}, {key}) END)"
        )

    def text_search(self, column: str) -> str:
        """SQL true when the text of ``column`` contains the bound substring (any case)."""
        return f"instr(lower(CAST({column} AS TEXT)), lower(?)) > 0"

    def contains_text(self, column: str) -> str:
        """SQL true when the text of ``column`` contains the bound substring (exact case)."""
        return f"instr({column}, ?) > 0"

    def search_index(self) -> list[str]:
        """Statements (run once, by a migration) creating the index that
        :meth:`trace_search` reads and filling it from the stored traces.

        SQLite: an FTS5 table of the traces' input and output text, trigram tokens
        (any script, case folded), ``detail=none`` (which trigrams a trace has, not
        where: the smallest index, about a fifth of the write cost of ``detail=full``).
        It is an external-content table over ``traces`` kept by triggers, so a write
        of a trace whose input and output did not change costs nothing.
        """
        row = "new.rowid, new.input, new.output"
        old = "'delete', old.rowid, old.input, old.output"
        into = "INSERT INTO traces_search (rowid, input, output)"
        drop = "INSERT INTO traces_search (traces_search, rowid, input, output)"
        return [
            "CREATE VIRTUAL TABLE traces_search USING fts5(input, output, content='traces',"
            " content_rowid='rowid', tokenize='trigram', detail='none')",
            f"CREATE TRIGGER traces_search_insert AFTER INSERT ON traces"
            f" BEGIN {into} VALUES ({row}); END",
            "CREATE TRIGGER traces_search_update AFTER UPDATE OF input, output ON traces"
            " WHEN old.input IS NOT new.input OR old.output IS NOT new.output"
            f" BEGIN {drop} VALUES ({old}); {into} VALUES ({row}); END",
            f"CREATE TRIGGER traces_search_delete AFTER DELETE ON traces"
            f" BEGIN {drop} VALUES ({old}); END",
            "INSERT INTO traces_search (traces_search) VALUES ('rebuild')",
        ]

    def trace_search(self, text: str, *, narrowed: bool = True) -> tuple[str, list[Any]]:
        """SQL (on ``traces t``) true when the trace's input or output JSON text contains
        ``text`` in any case (ASCII case on SQLite, the database's on PostgreSQL), and
        its parameters.

        With ``narrowed`` and a text of three characters or more, the traces are first
        narrowed to the index's candidates (:meth:`search_hits`), then the substring
        is checked on those; otherwise every trace the other conditions leave is read.
        """
        exact = f"({self.text_search('t.input')} OR {self.text_search('t.output')})"
        hits = self.search_hits(text) if narrowed else None
        if hits is None:
            return exact, [text, text]
        sql, params = hits
        return f"t.rowid IN ({sql}) AND {exact}", [*params, text, text]

    def search_hits(self, text: str) -> tuple[str, list[Any]] | None:
        """SQL selecting (as ``rowid``) the traces that may contain ``text``: those
        having all of its trigrams in the index of :meth:`search_index` (which folds
        case at least as widely as :meth:`trace_search`), in index order; None when
        ``text`` is shorter than a trigram (but see :func:`_pair_hits`) or the planner uses
        the index by itself (PostgreSQL)."""
        grams = _trigrams(text)
        if not grams:
            return _pair_hits(text)
        match = " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)
        return "SELECT rowid FROM traces_search WHERE traces_search MATCH ?", [match]

    def epoch_seconds(self, column: str) -> str:
        """SQL for a timestamp column as seconds since the epoch (float)."""
        return f"((julianday({column}) - 2440587.5) * 86400.0)"

    def seconds_between(self, end: str, start: str) -> str:
        """SQL for ``end - start`` in seconds (float), to the microsecond: whole seconds
        and fractions apart, from the fixed-width text (``julianday`` keeps only about
        ten microseconds, enough to move a latency across a histogram bucket edge).
        ``unixepoch`` (SQLite 3.38) gives the same whole seconds as ``strftime('%s')``
        as an integer, a fifth less time over a raw hour of observations."""
        whole = "unixepoch" if _UNIXEPOCH else "strftime"
        fmt = "" if _UNIXEPOCH else "'%s', "
        return (
            f"(({whole}({fmt}substr({end}, 1, 19)) - {whole}({fmt}substr({start}, 1, 19)))"
            f" + (CAST(substr({end}, 20, 7) AS REAL) - CAST(substr({start}, 20, 7) AS REAL)))"
        )

    def utc_day(self, column: str) -> str:
        """SQL for a timestamp column's UTC date as ``YYYY-MM-DD`` text."""
        return f"substr({column}, 1, 10)"  # stored as fixed-width UTC ISO text

    def utc_hour(self, column: str) -> str:
        """SQL for a timestamp column's UTC hour as ``YYYY-MM-DDTHH`` text."""
        return f"substr({column}, 1, 13)"

    def utc_month(self, column: str) -> str:
        """SQL for a timestamp column's UTC month as ``YYYY-MM`` text."""
        return f"substr({column}, 1, 7)"

    def time_bucket(self, column: str, granularity: str) -> str:
        """SQL for the start of the UTC ``minute``, ``hour``, ``day``, ``week`` (from
        Monday) or ``month`` holding a timestamp column, as ``YYYY-MM-DDTHH:MM:SS.000Z``."""
        if granularity == "week":
            return f"(date(substr({column}, 1, 10), '-6 days', 'weekday 1') || 'T00:00:00.000Z')"
        keep, tail = _BUCKET_TEXT[granularity]
        return f"(substr({column}, 1, {keep}) || '{tail}')"

    def percentile(self, fraction: float, expr: str) -> str:
        """SQL aggregate: the exact ``fraction`` quantile of ``expr`` (linear interpolation
        between the closest ranks, as PostgreSQL's ``percentile_cont``); NULLs ignored.
        On SQLite an aggregate registered on every connection (``store/db.py``)."""
        return f"lanterna_percentile({expr}, {float(fraction)!r})"

    def collect(self, expr: str) -> str:
        """SQL aggregate: the non-null values of ``expr`` in a group, read back by
        :meth:`collected`."""
        return f"json_group_array({expr}) FILTER (WHERE {expr} IS NOT NULL)"

    def collected(self, value: Any) -> list[Any]:
        """The list :meth:`collect` selected."""
        if value is None:
            return []
        return list(_json.loads(value)) if isinstance(value, (str, bytes)) else list(value)

    def json_sum_keys_containing(self, column: str) -> str:
        """SQL for the sum of the numeric values of JSON object ``column`` whose keys
        contain the bound text (any case); NULL when none do."""
        return (
            f"(SELECT SUM(j.value) FROM json_each({column}) j"
            " WHERE instr(lower(j.key), lower(?)) > 0 AND j.type IN ('integer', 'real'))"
        )

    def indexed_by(self, index: str) -> str:
        """SQL after a table name that makes the query use ``index`` (SQLite's planner
        has no statistics to choose by; PostgreSQL's does, so there it is empty)."""
        return f" INDEXED BY {index}"


class PostgresDialect(Dialect):
    """PostgreSQL via psycopg 3: ``%s`` placeholders, timestamptz and jsonb."""

    name = "postgresql"
    subquery_fence = " OFFSET 0"  # a subquery PostgreSQL does not pull up
    reads_beside = True
    # psycopg re-parses (uncached) every long statement's placeholders in Python, while
    # its executemany pipelines one prepared single-row statement: faster here.
    insert_rows = 1
    # psycopg prepares statements it runs often; PostgreSQL then keeps a generic plan
    # chosen when the tables were empty (a sequential scan) until the next ANALYZE,
    # which made the writer's id lookups slower with every row ingested.
    writer_setup = ("SET plan_cache_mode = force_custom_plan",)
    column_types = {
        "TS": "TIMESTAMPTZ",
        "JSON": "JSONB",
        "BOOL": "BOOLEAN",
        "FLOAT": "DOUBLE PRECISION",
        "CLUSTERED": "",
    }
    for_update = " FOR UPDATE"

    def begin(self, *, exclusive: bool = False) -> str:
        """PostgreSQL has no database-wide write lock, so writers share an advisory one:
        every write transaction takes it shared (writers never wait for each other) and
        maintenance that must not interleave with ingestion (``costs recompute``) takes it
        exclusive, waiting for running write transactions and holding off new ones until
        it commits. Both are released at commit or rollback. One round trip."""
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        return f"BEGIN; SELECT {lock}({_WRITE_LOCK})"

    def migration_lock(self) -> str | None:
        return f"SELECT pg_advisory_lock({_MIGRATION_LOCK})"

    def json_array_index(self, name: str, table: str, column: str) -> str | None:
        return f"CREATE INDEX {name} ON {table} USING GIN ({column} jsonb_path_ops)"

    def tables_with_column(self) -> str:
        return (
            "SELECT c.table_name AS name FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
            " AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
            " WHERE c.table_schema = current_schema() AND c.column_name = ?"
        )

    def sql(self, text: str) -> str:
        return _pg_sql(text)

    def ts(self, dt: datetime | None) -> Any:
        return dt

    def json_out(self, value: Any) -> Any:
        # psycopg already decodes jsonb; a str here is a JSON string value, not JSON text.
        return value

    def json_array_contains(self, column: str) -> str:
        return f"{column} @> jsonb_build_array(?::text)"

    def json_array_filter(self, column: str) -> tuple[str, int]:
        return self.json_array_contains(column), 1

    def json_text_at(self, column: str) -> str:
        return f"({column} ->> ?::text)"

    def json_number_at(self, column: str) -> str:
        return (
            f"(CASE WHEN jsonb_typeof({column} -> ?::text) = 'number'"
            f" THEN ({column} ->> ?::text)::double precision END)"
        )

    def by_index(self, table: str, index: str) -> str:
        return table

    def position(self, haystack: str, needle: str) -> str:
        return f"strpos({haystack}, {needle})"

    def comma_list(self, column: str) -> str:
        return f"string_agg(DISTINCT {column}, ',')"

    def magnitude(self, cost: str) -> str:
        # floor(log2) in numeric, exact enough: the reads allow a rounding's slack.
        return (
            f"(CASE WHEN ({cost}) > 0 AND ({cost}) < 'Infinity'::float8"
            f" THEN floor(log(2.0, ({cost})::numeric))::int ELSE {NO_COST} END)"
        )

    def text_search(self, column: str) -> str:
        return f"strpos(lower({column}::text), lower(?)) > 0"

    def contains_text(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"

    def search_index(self) -> list[str]:
        """PostgreSQL: one pg_trgm GIN index over the input and output text together
        (lower case; a newline between them, which JSON text never holds). Callers
        create the ``pg_trgm`` extension first (:func:`~lanterna.store.migrations`
        skips the index when the server lacks it)."""
        return [
            f"CREATE INDEX traces_search ON traces USING GIN (({_pg_searched('')}) gin_trgm_ops)"
        ]

    def search_hits(self, text: str) -> tuple[str, list[Any]] | None:
        return None

    def trace_search(self, text: str, *, narrowed: bool = True) -> tuple[str, list[Any]]:
        # LIKE on the indexed expression lets pg_trgm narrow the rows (it needs three
        # characters: a shorter text, whose LIKE would read the whole index, scans).
        # It means the same as the per-column check unless the text holds a newline
        # (JSON text never does: only a match across the joining newline could), so
        # the check is added only then. The pattern is made in SQL, so it is
        # lower-cased as the column is.
        exact = f"({self.text_search('t.input')} OR {self.text_search('t.output')})"
        if not narrowed or not _trigrams(text):
            return exact, [text, text]
        pattern = (
            r"'%' || replace(replace(replace(lower(?::text), '\', '\\'), '%', '\%'),"
            r" '_', '\_') || '%'"
        )
        like = f"{_pg_searched('t.')} LIKE {pattern}"
        if "\n" in text:
            return f"{like} AND {exact}", [text, text, text]
        return like, [text]

    def epoch_seconds(self, column: str) -> str:
        return f"extract(epoch from {column})"

    def seconds_between(self, end: str, start: str) -> str:
        return f"extract(epoch from ({end} - {start}))"

    def utc_day(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def utc_hour(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"

    def indexed_by(self, index: str) -> str:
        return ""

    def utc_month(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"

    def time_bucket(self, column: str, granularity: str) -> str:
        return (
            f"to_char(date_trunc('{granularity}', {column} AT TIME ZONE 'UTC'),"
            ' \'YYYY-MM-DD"T"HH24:MI:SS".000Z"\')'
        )

    def percentile(self, fraction: float, expr: str) -> str:
        return f"percentile_cont({float(fraction)!r}) WITHIN GROUP (ORDER BY {expr})"

    def collect(self, expr: str) -> str:
        return f"array_remove(array_agg({expr}), NULL)"

    def json_sum_keys_containing(self, column: str) -> str:
        return (
            f"(SELECT SUM((j.value #>> '{{}}')::double precision) FROM jsonb_each({column}) j"
            " WHERE strpos(lower(j.key), lower(?::text)) > 0"
            " AND jsonb_typeof(j.value) = 'number')"
        )


#: Per granularity: characters of the stored UTC text kept, and what completes them.
_BUCKET_TEXT = {
    "minute": (16, ":00.000Z"),
    "hour": (13, ":00:00.000Z"),
    "day": (10, "T00:00:00.000Z"),
    "month": (7, "-01T00:00:00.000Z"),
}


def _pg_searched(alias: str) -> str:
    """What PostgreSQL's trace search index holds (and the search's LIKE reads)."""
    return (
        f"lower(COALESCE({alias}input::text, '') || chr(10) || COALESCE({alias}output::text, ''))"
    )


#: The magnitude of a cost that is not positive (below any double's exponent).
NO_COST = -1100


def magnitude(cost: float | None) -> int:
    """``m`` with ``2**m <= cost < 2**(m+1)`` (exact), :data:`NO_COST` when the cost is
    not a positive finite number: a session's cost bucket (``store/session_totals.py``;
    the SQLite function ``lanterna_magnitude``)."""
    if cost is None or not 0 < cost < math.inf:
        return NO_COST
    return math.frexp(cost)[1] - 1


#: The characters stored JSON text can end with (a string, an object, an array, a
#: number, ``true``/``false``/``null``), in lower case.
_JSON_LAST = frozenset('"}]0123456789el')


def _pair_hits(text: str) -> tuple[str, list[Any]] | None:
    """SQLite: the traces that may contain a two-character ``text``: those with a
    trigram that starts with it (the index's vocabulary, ``traces_search_vocab``,
    lists them: migration 0043). Complete when each occurrence is followed by another
    character, which holds when the text's last character cannot end stored JSON
    text; and when the index's case folding of ``text`` is known (ASCII, or a script
    without case). Else None: the search reads the traces."""
    if len(text) != 2 or text[-1].lower() in _JSON_LAST:
        return None
    if not all(ch.isascii() or ch.lower() == ch.upper() for ch in text):
        return None
    folded = text.lower()
    # No such trigram: a match of one that cannot occur (control characters are
    # escaped in JSON text), so that MATCH gets an expression it can parse.
    terms = (
        "SELECT COALESCE(group_concat('\"' || replace(term, '\"', '\"\"') || '\"', ' OR '),"
        " '\"' || char(1, 1, 1) || '\"') FROM traces_search_vocab WHERE term >= ? AND term < ?"
    )
    return (
        f"SELECT rowid FROM traces_search WHERE traces_search MATCH ({terms})",
        [folded, folded + "\U0010ffff"],
    )


def _trigrams(text: str) -> list[str]:
    """The distinct three-character substrings of ``text``, in order."""
    return list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))


#: Advisory lock keys (PostgreSQL): one migrator at a time; writers vs maintenance.
_MIGRATION_LOCK = 7240311
_WRITE_LOCK = 7240312


@lru_cache(maxsize=2048)
def _pg_sql(text: str) -> str:
    # Our SQL never holds a literal "?" or "%" (patterns are bound as parameters).
    return text.replace("%", "%%").replace("?", "%s")


SQLITE = Dialect()
POSTGRES = PostgresDialect()
