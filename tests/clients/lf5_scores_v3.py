"""Read scores with the official Langfuse 5.x SDK's ``api.scores.get_many`` (v3 cursor list).

Run under .venvs/langfuse5 by tests/test_scores_v3.py, configured by LANGFUSE_PUBLIC_KEY,
LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL. Prints one JSON line: every score the SDK
parsed while following the cursor two at a time (its generated model class, the Python
type of ``value``, the subject), a filtered call, and the status of a refused call.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langfuse import Langfuse
from langfuse.api.core.api_error import ApiError


def describe(score: Any) -> dict[str, Any]:
    """What the SDK made of one score: the model it chose and the typed fields."""
    subject = score.subject
    return {
        "class": type(score).__name__,
        "id": score.id,
        "dataType": score.data_type,
        "value": score.value,
        "valueType": type(score.value).__name__,
        "timestampType": type(score.timestamp).__name__,
        "comment": score.comment,
        "metadata": score.metadata,
        "subject": None
        if subject is None
        else {"class": type(subject).__name__, "kind": subject.kind, "id": subject.id},
    }


def main() -> None:
    client = Langfuse()
    scores = client.api.scores
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        page = scores.get_many(limit=2, cursor=cursor, fields="details,subject,annotation")
        pages.append([describe(s) for s in page.data])
        cursor = page.meta.cursor
        if cursor is None or len(pages) > 50:
            break
    filtered = scores.get_many(data_type="boolean", value="true")
    try:
        scores.get_many(limit=101)
        refused: Any = None
    except ApiError as exc:
        refused = exc.status_code
    client.shutdown()
    out = {
        "pages": pages,
        "limit": page.meta.limit,
        "filtered": [describe(s) for s in filtered.data],
        "refused": refused,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
