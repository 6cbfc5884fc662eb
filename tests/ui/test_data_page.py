"""The Data page (export, deleting a user's or a session's data, masking rules) and the
audit log page, through the real app: who may do what, and what lands in the log."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

from conftest import Browser
from helpers import event


def _post(client: Browser, path: str, page: str, **data: str):
    token = client.csrf(page)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _ingest(client: Browser, project, *events) -> None:
    response = client.post("/api/public/ingestion", json={"batch": list(events)}, auth=project.auth)
    assert response.status_code == 207 and not response.json()["errors"], response.text


def test_owner_deletes_a_users_data_and_sees_it_in_the_audit_log(two_projects) -> None:
    client, a, _ = two_projects
    _ingest(
        client,
        a,
        event("trace-create", {"id": "t1", "userId": "alice", "sessionId": "s1"}),
        event("trace-create", {"id": "t2", "userId": "bob"}),
        event("score-create", {"id": "q1", "traceId": "t1", "name": "q", "value": 1}),
    )
    assert client.login("owner-a@example.com") == 303
    data = f"/project/{a.id}/data"
    page = client.get(data)
    assert page.status_code == 200 and "Masking rules" in page.text
    # The id typed twice, or nothing happens.
    refused = _post(client, f"{data}/delete", data, what="user", id="alice", confirm="alicee")
    assert refused.status_code == 400 and "confirm" in refused.text
    done = _post(client, f"{data}/delete", data, what="user", id="alice", confirm="alice")
    assert done.status_code == 200
    assert "1 trace(s), 0 observation(s), 1 score(s), 1 session(s)" in done.text
    assert client.get("/api/public/traces/t1", auth=a.auth).status_code == 404
    assert client.get("/api/public/traces/t2", auth=a.auth).status_code == 200

    rules = json.dumps([{"type": "builtin", "name": "email"}])
    assert _post(client, f"{data}/masking", data, rules=rules).status_code == 303
    bad = _post(client, f"{data}/masking", data, rules='[{"type": "regex", "pattern": "(a)\\\\1"}]')
    assert bad.status_code == 400 and "RE2" in bad.text
    _ingest(client, a, event("trace-create", {"id": "t3", "input": "write to me@example.com"}))
    assert client.get("/api/public/traces/t3", auth=a.auth).json()["input"] == (
        "write to [REDACTED]"
    )

    audit = client.get(f"/project/{a.id}/audit")
    assert audit.status_code == 200
    assert "user:owner-a@example.com" in audit.text
    assert "user.delete" in audit.text and "masking.update" in audit.text
    assert client.get(f"/project/{a.id}/audit?action=masking").text.count("<tr>") == 2


def test_viewers_export_but_neither_delete_nor_read_the_audit_log(two_projects) -> None:
    client, a, b = two_projects
    _ingest(client, a, event("trace-create", {"id": "t1", "userId": "alice"}))
    _ingest(client, b, event("trace-create", {"id": "theirs"}))
    assert client.login("viewer-a@example.com") == 303
    data = f"/project/{a.id}/data"
    page = client.get(data)
    assert page.status_code == 200 and "Masking rules" not in page.text
    assert (
        _post(client, f"{data}/delete", data, what="user", id="alice", confirm="alice").status_code
        == 403
    )
    assert client.get(f"/project/{a.id}/audit").status_code == 403
    export = client.get(f"{data}/export?format=jsonl&userId=&environment=")
    assert export.status_code == 200
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert [x["data"]["id"] for x in lines] == ["t1"]
    table = client.get(f"{data}/export?format=parquet&kind=trace")
    assert pq.read_table(io.BytesIO(table.content)).column("id").to_pylist() == ["t1"]
    # Another project's data is out of reach.
    assert client.get(f"/project/{b.id}/data/export").status_code == 404


def test_settings_changes_are_audited(two_projects) -> None:
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") == 303
    settings = f"/project/{a.id}/settings"
    assert (
        _post(client, f"{settings}/project", settings, name="A2", retention_days="14").status_code
        == 303
    )
    assert _post(client, f"{settings}/keys", settings, note="ci").status_code == 200
    actions = [e["action"] for e in client.get("/api/public/audit-log", auth=a.auth).json()["data"]]
    assert actions == ["api_key.create", "retention.update", "project.update"]


def test_csv_export_neutralises_formulas_and_keeps_numbers(two_projects) -> None:
    """Text a spreadsheet would run (OWASP's CSV injection: ``=``, ``+``, ``-``, ``@``,
    tab, carriage return first) gets a leading ``'``, in the dashboard's export and the
    API's (one writer); numbers, negative ones too, stay numbers."""
    client, a, _ = two_projects
    formula = '=HYPERLINK("http://evil.example","x")'
    user = "+1+cmd|' /C calc'!A0"
    _ingest(
        client,
        a,
        event("trace-create", {"id": "t1", "name": formula, "userId": user, "tags": ["-x"]}),
        event(
            "generation-create",
            {
                "id": "g1",
                "traceId": "t1",
                "name": "@sum",
                "model": "m",
                "costDetails": {"total": 0.25},
                "usageDetails": {"input": 3},
            },
        ),
        event("score-create", {"id": "q1", "traceId": "t1", "name": "\tq", "value": -1.5}),
        event("score-create", {"id": "q2", "traceId": "t1", "name": "c", "value": "-2\r"}),
    )
    assert client.login("viewer-a@example.com") == 303

    def rows(path: str, **auth: object) -> list[dict[str, str]]:
        response = client.get(path, **auth)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(response.text)))

    for where, auth in (
        (f"/project/{a.id}/data/export", {}),
        ("/api/public/export", {"auth": a.auth}),
    ):
        (trace,) = rows(f"{where}?format=csv&kind=trace", **auth)
        assert trace["name"] == "'" + formula
        assert trace["userId"] == "'" + user
        assert trace["tags"] == '["-x"]'  # JSON text starts with [: left as is
        assert trace["id"] == "t1"
        (generation,) = rows(f"{where}?format=csv&kind=observation", **auth)
        assert generation["name"] == "'@sum"
        assert generation["calculatedTotalCost"] == "0.25"  # a number: no quote
        assert generation["model"] == "m"
        scores = {s["id"]: s for s in rows(f"{where}?format=csv&kind=score", **auth)}
        assert scores["q1"]["name"] == "'\tq"
        assert scores["q1"]["value"] == "-1.5"  # negative number: unchanged
        assert scores["q2"]["stringValue"] == "'-2\r"
