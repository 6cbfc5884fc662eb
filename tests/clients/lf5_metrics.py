"""Metrics queries with the official Langfuse 5.x SDK; run under .venvs/langfuse5.

Configured like any user's app (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY,
LANGFUSE_BASE_URL). Takes one argument, a JSON list of ``{"version": 1 | 2, "query":
{...}}``; prints one JSON line: per query, the parsed answer's rows and its type, or
the SDK's error (name, status, body).

v2 is the SDK's own client, ``langfuse.api.metrics.metrics(query=...)``. 5.x has no
generated client for the deprecated v1 route, so v1 goes through the same SDK's HTTP
client (its auth, headers and base URL) and is parsed into the SDK's response model.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langfuse import Langfuse
from langfuse.api.core.api_error import ApiError
from langfuse.api.core.pydantic_utilities import parse_obj_as
from langfuse.api.metrics.types.metrics_v2response import MetricsV2Response


def run(client: Langfuse, version: int, query: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(query)
    try:
        if version == 2:
            answer = client.api.metrics.metrics(query=text)
        else:
            wrapper = client.api._client_wrapper  # the SDK's configured HTTP client
            response = wrapper.httpx_client.request(
                "api/public/metrics", method="GET", params={"query": text}
            )
            if response.status_code != 200:
                return {"error": "HTTP", "status": response.status_code, "body": response.json()}
            answer = parse_obj_as(type_=MetricsV2Response, object_=response.json())
    except ApiError as exc:
        return {"error": type(exc).__name__, "status": exc.status_code, "body": exc.body}
    return {"type": type(answer).__name__, "data": answer.data}


def main() -> None:
    queries = json.loads(sys.argv[1])
    client = Langfuse()
    try:
        out = [run(client, q["version"], q["query"]) for q in queries]
    finally:
        client.shutdown()
    print(json.dumps({"answers": out}))


if __name__ == "__main__":
    main()
