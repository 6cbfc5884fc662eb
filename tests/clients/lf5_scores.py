"""Scores with the official Langfuse 5.x SDK; run under .venvs/langfuse5 by the tests.

Configured like any user's app, by LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and
LANGFUSE_BASE_URL. Prints one JSON line; the SDK never raises into user code but logs
on the ``langfuse`` logger, so the line carries everything it logged.

    lf5_scores.py auth                       auth_check() -> {"auth": bool, "error": ...}
    lf5_scores.py scores TRACE OBS SESSION   create scores on those targets, flush
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


_log = _Collect()
logging.getLogger("langfuse").addHandler(_log)
logging.getLogger("langfuse").setLevel(logging.WARNING)

from langfuse import Langfuse  # noqa: E402  (after the log handler, to catch init logs)


def taken_log() -> list[str]:
    """What the SDK logged since the last call."""
    records = list(_log.records)
    _log.records.clear()
    return records


def auth() -> dict[str, Any]:
    client = Langfuse()
    try:
        return {"auth": client.auth_check(), "error": None}
    except Exception as exc:  # the SDK raises its generated client's error type
        return {"auth": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.shutdown()


def scores(trace_id: str, observation_id: str, session_id: str) -> dict[str, Any]:
    # flush_at=2 makes the batches deterministic: the second phase is one batch of two.
    client = Langfuse(flush_at=2, flush_interval=30)
    out: dict[str, Any] = {"auth": client.auth_check()}
    client.create_score(
        score_id="lf5-trace",
        trace_id=trace_id,
        name="accuracy",
        value=0.92,
        comment="close enough",
        metadata={"judge": "human"},
    )
    client.create_score(
        score_id="lf5-observation",
        trace_id=trace_id,
        observation_id=observation_id,
        name="step-quality",
        value=0.5,
        data_type="NUMERIC",
    )
    client.create_score(
        score_id="lf5-session", session_id=session_id, name="session-rating", value=4
    )
    client.create_score(
        score_id="lf5-categorical",
        trace_id=trace_id,
        name="tone",
        value="friendly",
        data_type="CATEGORICAL",
    )
    client.create_score(
        score_id="lf5-boolean",
        trace_id=trace_id,
        name="correct",
        value=True,
        data_type="BOOLEAN",
        environment="staging",
    )
    client.create_score(
        score_id="lf5-text", trace_id=trace_id, name="note", value="well put", data_type="TEXT"
    )
    client.flush()
    out["good_log"] = taken_log()
    # One valid and one invalid score in one batch: the server answers 207 with counts,
    # which the SDK parses and logs (it does not retry).
    client.create_score(score_id="lf5-good", trace_id=trace_id, name="extra", value=1)
    client.create_score(
        score_id="lf5-bad", trace_id=trace_id, name="broken", value=5, data_type="BOOLEAN"
    )
    client.flush()
    out["mixed_log"] = taken_log()
    client.shutdown()
    out["shutdown_log"] = taken_log()
    return out


def main() -> None:
    mode = sys.argv[1]
    result = auth() if mode == "auth" else scores(*sys.argv[2:5])
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
