"""Property test of the A/B rollups (``store/ab_rollups.py``): whatever the events
(traces joining, leaving and moving between tests, variants and hours, users and
sessions changing, observations and scores in any order and batches), deletes of
traces and scores and cost recomputes, a declared test's readout from the rollups
equals the readout computed from the raw rows, figure for figure; and the migration's
backfill builds the same tables."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from helpers import event
from lanterna.abtests.rules import AbTestError
from lanterna.analytics import ab_readout
from lanterna.analytics.ab_readout import Grouping
from lanterna.store import ab_rollups
from test_rollups_property import (
    SCORES,
    TRACES,
    _observation_event,
    _score_event,
    _seconds,
    _whole_trace,
    apply_step,
)

TEST = "exp"
METRICS = ("quality", "helpful", "cost", "latency", "errorRate")
_META = st.sampled_from(
    [
        None,
        {"experiment": TEST, "variant": "A"},
        {"experiment": TEST, "variant": "B"},
        {"experiment": TEST, "variant": "C"},
        {"experiment": "other", "variant": "A"},
        {"experiment": TEST},
        {"experiment": TEST, "variant": 7},
        {"note": "no test"},
    ]
)


@st.composite
def _trace_event(draw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": draw(st.sampled_from(TRACES))}
    if draw(st.booleans()):
        from helpers import iso

        body["timestamp"] = iso(seconds=draw(_seconds))
    meta = draw(_META)
    if meta is not None:
        body["metadata"] = meta
    for key, values in (("userId", ["u1", "u2", "u3"]), ("sessionId", ["s1", "s2"])):
        if draw(st.booleans()):
            body[key] = draw(st.sampled_from(values))
    return event("trace-create", body)


@st.composite
def _whole_test_trace(draw: Any) -> list[dict[str, Any]]:
    """A whole new trace (the write path's precomputed case) taking part in the test."""
    events = draw(_whole_trace())
    for e in events:
        if e["type"] == "trace-create":
            e["body"]["metadata"] = {"experiment": TEST, "variant": draw(st.sampled_from("AB"))}
    return events


_batch = st.lists(
    st.one_of(_trace_event(), _observation_event(), _score_event(), _score_event()),
    min_size=1,
    max_size=8,
)
_step = st.one_of(
    _whole_test_trace().map(lambda b: ("ingest", b)),
    st.tuples(_whole_test_trace(), _batch).map(lambda b: ("ingest", [*b[0], *b[1]])),
    _batch.map(lambda b: ("ingest", b)),
    _batch.map(lambda b: ("ingest", b)),
    st.sampled_from(TRACES).map(lambda t: ("delete", t)),
    st.sampled_from(SCORES).map(lambda t: ("delete-score", t)),
    st.just(("recompute", None)),
)


# The rollups keep each bucket's sum of squared latencies as a float moved by deltas:
# a latency squared and later taken out again (a trace moving to another variant or
# hour) leaves a rounding residue of its square's magnitude times 2^-52 per move. The
# steps draw latencies up to 5 hours, squares up to 3.3e8 s^2: 2^-52 of that is 7e-8.
_SQUARES_TOL = 1e-5


def _squares(where: str) -> bool:
    """Whether ``where`` names a sum of squared latencies (see :data:`_SQUARES_TOL`)."""
    moments = where.startswith("latency inputs.moments") and where.endswith("[4]")
    return moments or where.endswith(".latency_squares")


def _same(got: Any, want: Any, where: str = "") -> None:
    if isinstance(want, float) and _squares(where):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=_SQUARES_TOL), (where, got, want)
        return
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, type(want)) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, (int, float)), where
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (where, got, want)
    else:
        assert got == want, (where, got, want)


def _readout(conn: Any, pid: str, metric: str, unit: str, rollup: bool) -> Any:
    others = [m for m in METRICS if m != metric]
    try:
        guards = [g for g in others if ab_readout.metric_kind(conn, pid, g)]
    except AbTestError:
        guards = [g for g in ("cost", "latency", "errorRate") if g != metric]
    out = ab_readout.readout(
        conn,
        pid,
        Grouping("abTest", TEST),
        metric=metric,
        guardrails=guards,
        variants=["A", "B", "C"],
        control="A",
        weights={"A": 1.0, "B": 1.0, "C": 0.0},
        unit=unit,
        mde=0.5,
        rollup=rollup,
    )
    out["verdict"].pop("text")  # numbers printed from the figures compared above
    return out


def assert_readouts_match(api: Any) -> None:
    """For every metric there is and both units: rollups == raw rows."""
    rt = api.app.state.runtime
    pid = api.project.id
    for metric in METRICS:
        for unit in ("user", "session"):

            def both(conn: Any, m: str = metric, u: str = unit) -> Any:
                try:
                    return [_readout(conn, pid, m, u, r) for r in (True, False)]
                except AbTestError:  # a score name nothing stored yet: no readout at all
                    return None

            pair = rt.read_sync(both)
            if pair is not None:
                _same(pair[0], pair[1], f"{metric}/{unit}")
        inputs = rt.read_sync(lambda c, m=metric: [_inputs(c, pid, m, r) for r in (True, False)])
        if inputs[0] is not None:
            _same(inputs[0], inputs[1], f"{metric} inputs")


def _inputs(conn: Any, pid: str, metric: str, rollup: bool) -> Any:
    """What the statistics are given (per variant and per variant, hour and value),
    in one order: the readout's figures rest on them whatever the sample size."""
    grouping = Grouping("abTest", TEST)
    try:
        rows = ab_readout.metric_rows(conn, pid, grouping, metric, rollup=rollup)
    except AbTestError:
        return None
    ops = [
        ab_readout.operational(conn, pid, grouping, u, rollup=rollup) for u in ("user", "session")
    ]
    return {
        "ops": [vars(o) for o in ops],
        "rows": sorted(rows.rows, key=repr),
        "moments": sorted(rows.moments or [], key=repr),
    }


_TABLES = ("ab_members", "ab_rollup_hours", "ab_rollup_units", "ab_rollup_scores",
           "ab_rollup_labels")  # fmt: skip


def assert_backfill_matches(api: Any) -> None:
    """The migration's backfill of the stored rows gives the tables the write path kept
    (rows without anything left aside; sums within float rounding)."""
    rt = api.app.state.runtime
    pid = api.project.id
    counts = {"ab_rollup_hours": "traces", "ab_rollup_units": "traces",
              "ab_rollup_scores": "scores", "ab_rollup_labels": "scores"}  # fmt: skip

    def snapshot(conn: Any) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for table in _TABLES:
            where = f" AND {counts[table]} > 0" if table in counts else ""
            rows = conn.all(f"SELECT * FROM {table} WHERE project_id = ?{where}", [pid])
            out[table] = sorted(rows, key=lambda r: repr(sorted(r.items())))
        return out

    def rebuilt(conn: Any) -> dict[str, list[dict[str, Any]]]:
        conn.raw.execute("SAVEPOINT ab_backfill")
        try:
            for table in _TABLES:
                conn.run(f"DELETE FROM {table}")
            ab_rollups.backfill(conn)
            return snapshot(conn)
        finally:
            conn.raw.execute("ROLLBACK TO SAVEPOINT ab_backfill")

    kept = rt.read_sync(snapshot)
    db = rt.db
    with db.transaction() as conn:
        built = rebuilt(conn)
    _same(kept, built, "tables")


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=7))
def test_rollup_readout_equals_raw_readout_whatever_happens(api, db_url, steps):
    project = api.new_project()
    api.project, api.auth = project, project.auth
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
        assert_readouts_match(api)
    assert_backfill_matches(api)


def test_a_time_range_reads_raw_rows(api):
    """A readout over a range (not the whole test) counts the raw rows in it."""
    from helpers import T0, ingest, iso

    events = []
    for i in range(12):
        body = {
            "id": f"t{i}",
            "timestamp": iso(seconds=600 * i),
            "userId": f"u{i % 4}",
            "metadata": {"experiment": TEST, "variant": "AB"[i % 2]},
        }
        events.append(event("trace-create", body))
    ingest(api, *events)
    rt = api.app.state.runtime
    pid = api.project.id
    grouping = Grouping("abTest", TEST)
    assert grouping.rolled_up(None, None) and not grouping.rolled_up(T0, None)
    ops = rt.read_sync(lambda c: ab_readout.operational(c, pid, grouping))
    assert ops.traces == {"A": 6, "B": 6} and ops.units == {"A": 2, "B": 2}
    later = rt.read_sync(
        lambda c: ab_readout.operational(c, pid, grouping, from_ts=T0 + timedelta(hours=1))
    )
    assert later.traces == {"A": 3, "B": 3} and later.units == {"A": 2, "B": 2}
