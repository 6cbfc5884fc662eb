"""Langfuse 2.x SDK reading what the server stored: every read the SDK parses into its
models (``fetch_trace``, ``fetch_traces``, ``fetch_observation``, ``fetch_observations``,
``fetch_sessions``, the projects and daily metrics clients). Takes a trace id, an
observation id and a session id; prints, per read, what the parsed models hold (or the
error the SDK raised) as one JSON object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from langfuse import Langfuse
from lf2_common import capture_log, emit

capture_log()
langfuse = Langfuse()


def attempt(read: Callable[[], Any]) -> Any:
    """``read()``'s result, or the error the SDK raised while parsing the answer."""
    try:
        return read()
    except Exception as exc:  # the test shows it
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def main() -> None:
    trace_id, observation_id, session_id = sys.argv[1:4]

    def trace() -> dict[str, Any]:
        got = langfuse.fetch_trace(trace_id).data
        return {
            "id": got.id,
            "scores": sorted(s.data_type for s in got.scores),
            "observations": sorted(o.type for o in got.observations),
            "latency": got.latency,
        }

    def traces() -> list[str]:
        return [t.id for t in langfuse.fetch_traces(limit=50).data]

    def observation() -> dict[str, Any]:
        got = langfuse.fetch_observation(observation_id).data
        return {"id": got.id, "usage": got.usage.total if got.usage else None}

    def observations() -> list[str]:
        return sorted(o.id for o in langfuse.fetch_observations(trace_id=trace_id).data)

    def sessions() -> list[str]:
        return [s.id for s in langfuse.fetch_sessions().data]

    def session() -> list[str]:
        return [t.id for t in langfuse.client.sessions.get(session_id).traces]

    def projects() -> list[str]:
        return [p.name for p in langfuse.client.projects.get().data]

    def daily() -> list[int]:
        return [d.count_traces for d in langfuse.client.metrics.daily().data]

    reads = {
        "trace": trace, "traces": traces, "observation": observation,
        "observations": observations, "sessions": sessions, "session": session,
        "projects": projects, "daily": daily,
    }  # fmt: skip
    emit({name: attempt(read) for name, read in reads.items()})


if __name__ == "__main__":
    main()
