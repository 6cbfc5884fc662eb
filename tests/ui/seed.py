"""Seed data for the dashboard tests, sent through the real ingestion and prompt APIs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

XSS_SCRIPT = "<script>window.__xss = 1; alert('xss')</script>"
XSS_IMG = '<img src=x onerror="window.__xss = 2; alert(2)">'
XSS_LINK = '[click me](javascript:window.__xss=3) <a href="javascript:window.__xss=4">link</a>'
XSS_MARKDOWN = (
    '# Title\n\n<b onmouseover="window.__xss=5">bold</b> **markdown**'
    ' <iframe src="javascript:alert(5)"></iframe>'
)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _event(type_: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": type_, "timestamp": _iso(at), "body": body}


def ingest(base_url: str, auth: tuple[str, str], events: list[dict[str, Any]]) -> None:
    """POST one batch; every event must be accepted."""
    response = httpx.post(f"{base_url}/api/public/ingestion", json={"batch": events}, auth=auth)
    assert response.status_code == 207, response.text
    assert not response.json()["errors"], response.text


def chat_trace(
    *,
    at: datetime,
    name: str,
    user: str,
    session: str | None,
    question: str,
    answer: str,
    model: str = "gpt-4o",
    error: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A trace with a retrieval span, a generation (usage, priced by model) and, for an
    error, a failing tool span. Returns the trace id and its events."""
    trace_id = trace_id or str(uuid.uuid4())
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": question},
    ]
    events = [
        _event(
            "trace-create",
            {
                "id": trace_id,
                "name": name,
                "userId": user,
                "sessionId": session,
                "input": {"messages": messages},
                "output": answer,
                "tags": tags or [],
                "metadata": metadata or {},
                "release": "1.2.0",
                "timestamp": _iso(at),
            },
            at,
        ),
        _event(
            "span-create",
            {
                "id": f"{trace_id}-retrieve",
                "traceId": trace_id,
                "name": "retrieve",
                "startTime": _iso(at),
                "endTime": _iso(at + timedelta(milliseconds=300)),
                "input": {"query": question},
                "output": {"documents": ["doc-1", "doc-2"]},
            },
            at,
        ),
        _event(
            "generation-create",
            {
                "id": f"{trace_id}-llm",
                "traceId": trace_id,
                "name": "answer",
                "model": model,
                "modelParameters": {"temperature": 0.2},
                "startTime": _iso(at + timedelta(milliseconds=300)),
                "completionStartTime": _iso(at + timedelta(milliseconds=700)),
                "endTime": _iso(at + timedelta(milliseconds=1800)),
                "input": messages,
                "output": {"role": "assistant", "content": answer},
                "usageDetails": {"input": 1200, "output": 300},
            },
            at,
        ),
    ]
    if error:
        events.append(
            _event(
                "span-create",
                {
                    "id": f"{trace_id}-tool",
                    "traceId": trace_id,
                    "parentObservationId": f"{trace_id}-llm",
                    "name": "web_search",
                    "startTime": _iso(at + timedelta(milliseconds=900)),
                    "endTime": _iso(at + timedelta(milliseconds=1500)),
                    "level": "ERROR",
                    "statusMessage": error,
                },
                at,
            )
        )
    return trace_id, events


def seed_basic(base_url: str, auth: tuple[str, str]) -> dict[str, Any]:
    """Two users, one three-turn session, one failing trace, Korean text, scores."""
    now = datetime.now(timezone.utc) - timedelta(minutes=30)
    ids: dict[str, Any] = {"session": "sess-alice-1", "turns": []}
    events: list[dict[str, Any]] = []
    questions = [
        ("서울 날씨 어때?", "서울은 맑고 기온은 21도입니다."),
        ("What should I wear?", "A light jacket is enough."),
        ("And tomorrow?", "Tomorrow brings rain; take an umbrella."),
    ]
    for i, (question, answer) in enumerate(questions):
        trace_id, evs = chat_trace(
            at=now + timedelta(minutes=i),
            name="chat-turn",
            user="alice",
            session=ids["session"],
            question=question,
            answer=answer,
            tags=["production", "chat"],
            metadata={"variant": "A" if i % 2 == 0 else "B"},
        )
        ids["turns"].append(trace_id)
        events += evs
    ids["error_trace"], evs = chat_trace(
        at=now + timedelta(minutes=5),
        name="research",
        user="bob",
        session=None,
        question="Find recent papers on retrieval",
        answer="I could not finish the search.",
        model="gpt-4o-mini",
        error="TimeoutError: web search took longer than 30s",
        tags=["beta"],
        metadata={"variant": "B"},
    )
    events += evs
    ingest(base_url, auth, events)
    scores = [
        {"traceId": ids["turns"][0], "name": "user_rating", "value": 5},
        {"traceId": ids["turns"][1], "name": "user_rating", "value": 3},
        {"traceId": ids["error_trace"], "name": "user_rating", "value": 1},
        {"traceId": ids["turns"][0], "name": "quality", "value": 0.9},
    ]
    for body in scores:
        response = httpx.post(f"{base_url}/api/public/scores", json=body, auth=auth)
        assert response.status_code == 200, response.text
    return ids


def seed_xss(base_url: str, auth: tuple[str, str]) -> str:
    """A trace whose input, output, metadata and names carry script payloads."""
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    trace_id, events = chat_trace(
        at=at,
        name=f"xss {XSS_SCRIPT}",
        user=f"mallory {XSS_IMG}",
        session=f"sess {XSS_IMG}",
        question=f"{XSS_SCRIPT} {XSS_IMG} {XSS_LINK}",
        answer=XSS_MARKDOWN,
        tags=[XSS_IMG],
        metadata={"note": XSS_SCRIPT, XSS_IMG: XSS_LINK, "nested": {"html": XSS_MARKDOWN}},
    )
    ingest(base_url, auth, events)
    httpx.post(
        f"{base_url}/api/public/scores",
        json={"traceId": trace_id, "name": "xss<b>", "value": XSS_IMG, "comment": XSS_SCRIPT},
        auth=auth,
    ).raise_for_status()
    return trace_id


def create_prompt(base_url: str, auth: tuple[str, str], name: str, text: str, **extra: Any) -> None:
    """Create a text prompt version through the API."""
    body = {"name": name, "type": "text", "prompt": text, **extra}
    response = httpx.post(f"{base_url}/api/public/v2/prompts", json=body, auth=auth)
    assert response.status_code in (200, 201), response.text
