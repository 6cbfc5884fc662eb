"""The Evaluations settings page's forms through the real app in-process, logged in as
a browser is: owners create an evaluator and a rule (observation target included),
see them listed, switch the rule off and on; bad input is answered on the page with
nothing stored; viewers see but cannot change anything; another project's owner gets
404s. The rule made through the form then scores an observation (worker ticked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import Browser, add_user
from helpers import event, ingest
from lanterna.server.app import create_app
from lanterna.timeutil import now
from support import Project, make_settings, new_project

XSS = "<script>alert(1)</script>"


@pytest.fixture
def evaluations(db_url: str, tmp_path: Path) -> Iterator[tuple[Browser, Project, Project]]:
    """The app (background loops off: the test ticks the worker) with projects A and B,
    their owners and a viewer of A."""
    settings = make_settings(db_url, tmp_path)
    settings.evaluation_tick_seconds = settings.alert_tick_seconds = 0
    app = create_app(settings)
    a, b = new_project(db_url, "A"), new_project(db_url, "B")
    add_user(db_url, "owner-a@example.com", {a.id: "owner"})
    add_user(db_url, "viewer-a@example.com", {a.id: "viewer"})
    add_user(db_url, "owner-b@example.com", {b.id: "owner"})
    with Browser(app, client=("127.0.0.1", 50020)) as client:
        yield client, a, b


def _post(client: Browser, base: str, path: str, **data: str) -> Any:
    token = client.csrf(base)
    return client.post(base + path, data={"csrf_token": token, **data}, follow_redirects=False)


def _rules(client: Browser, project: Project) -> list[dict[str, Any]]:
    listed = client.get("/api/public/unstable/evaluation-rules", auth=project.auth)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["data"])


def _evaluators(client: Browser, project: Project) -> list[dict[str, Any]]:
    listed = client.get("/api/public/unstable/evaluators", auth=project.auth)
    return list(listed.json()["data"])


def _row(page: str, rule_id: str) -> str:
    return page.split(f'data-rule="{rule_id}"')[1].split("</tr>")[0]


def test_owners_manage_evaluators_and_rules_through_the_forms(evaluations) -> None:
    client, a, _ = evaluations
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings/evaluations"
    first = client.get(base).text
    assert "No evaluators yet." in first and "No rules yet." in first
    assert 'data-testid="new-rule"' not in first  # a rule needs an evaluator first

    made = _post(client, base, "/evaluators", name=f"paris {XSS}", type="contains",
                 config='{"value": "Paris"}')  # fmt: skip
    assert made.status_code == 303 and made.headers["location"] == base
    page = client.get(base).text
    assert f"paris {XSS}" not in page and "paris &lt;script&gt;" in page
    assert 'data-testid="new-rule"' in page
    assert 'value="observation"' in page  # the form offers the observation target
    (evaluator,) = _evaluators(client, a)
    assert (evaluator["type"], evaluator["config"]["value"]) == ("contains", "Paris")

    bad_json = _post(client, base, "/evaluators", name="x", type="contains", config="{nope")
    assert bad_json.status_code == 400 and "config: not valid JSON" in bad_json.text
    bad_type = _post(client, base, "/evaluators", name="x", type="code", config="")
    assert bad_type.status_code == 400 and "code evaluators are not supported" in bad_type.text
    assert len(_evaluators(client, a)) == 1

    gen_filter = '[{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION"]}]'  # noqa: E501
    rule = _post(client, base, "/rules", name="generations", evaluator=evaluator["name"],
                 target="observation", sampling="1", filter=gen_filter, mapping="")  # fmt: skip
    assert rule.status_code == 303, rule.text
    (stored,) = _rules(client, a)
    assert (stored["target"], stored["enabled"], stored["sampling"]) == ("observation", True, 1.0)
    assert stored["filter"][0]["value"] == ["GENERATION"]
    row = _row(client.get(base).text, stored["id"])
    assert "generations" in row and "observation" in row and "active" in row
    assert ">Disable<" in row

    bad_filter = '[{"type": "string", "column": "nope", "operator": "=", "value": "x"}]'
    refused = _post(client, base, "/rules", name="bad", evaluator=evaluator["name"],
                    target="observation", sampling="1", filter=bad_filter)  # fmt: skip
    assert refused.status_code == 400
    assert "filter[0].column: &#39;nope&#39;" in refused.text
    bad_rate = _post(client, base, "/rules", name="bad", evaluator=evaluator["name"],
                     target="trace", sampling="2", filter="[]")  # fmt: skip
    assert bad_rate.status_code == 400 and "sampling" in bad_rate.text
    assert len(_rules(client, a)) == 1

    toggle = f"/rules/{stored['id']}/toggle"
    assert _post(client, base, toggle, enabled="0").status_code == 303
    assert _rules(client, a)[0]["enabled"] is False
    row = _row(client.get(base).text, stored["id"])
    assert "inactive" in row and ">Enable<" in row
    assert _post(client, base, toggle, enabled="1").status_code == 303
    assert _rules(client, a)[0]["status"] == "active"
    assert ">Disable<" in _row(client.get(base).text, stored["id"])
    assert _post(client, base, "/rules/no-such-rule/toggle", enabled="0").status_code == 404

    # The rule made through the form scores the generation, and the page shows the run.
    ingest(
        client,
        event("trace-create", {"id": "t-ui", "name": "chat"}),
        event("span-create", {"id": "s-ui", "traceId": "t-ui", "output": "Paris"}),
        event("generation-create", {"id": "g-ui", "traceId": "t-ui", "output": "Paris"}),
        auth=a.auth,
    )
    rt = client.app.state.runtime
    assert rt.evaluation.run_until_idle(now() + timedelta(minutes=1)) == 1
    runs = client.get(base).text.split('data-testid="runs"')[1]
    assert "g-ui" in runs and "s-ui" not in runs and ">observation<" in runs
    scored_once = '<td class="num">1</td><td class="num">0</td>'  # scored, errors
    assert scored_once in _row(client.get(base).text, stored["id"])


def test_viewers_see_evaluations_but_cannot_change_them(evaluations) -> None:
    client, a, b = evaluations
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings/evaluations"
    _post(client, base, "/evaluators", name="valid", type="json_valid", config="")
    _post(client, base, "/rules", name="all", evaluator="valid", target="trace", sampling="1",
          filter="[]")  # fmt: skip
    (rule,) = _rules(client, a)

    viewer = Browser(client.app, client=("127.0.0.1", 50021))
    assert viewer.login("viewer-a@example.com") == 303
    seen = viewer.get(base)
    assert seen.status_code == 200 and ">all<" in seen.text and ">valid<" in seen.text
    for form in ("new-evaluator", "new-rule", "new-connection"):
        assert f'data-testid="{form}"' not in seen.text
    assert ">Disable<" not in seen.text
    token = viewer.csrf(f"/project/{a.id}/settings")
    attempts = {
        "/evaluators": {"name": "v", "type": "json_valid"},
        "/rules": {"name": "v", "evaluator": "valid", "target": "trace", "filter": "[]"},
        f"/rules/{rule['id']}/toggle": {"enabled": "0"},
    }
    for path, data in attempts.items():
        answer = viewer.post(base + path, data={"csrf_token": token, **data})
        assert answer.status_code == 403, path
    assert [e["name"] for e in _evaluators(client, a)] == ["valid"]
    assert [(r["name"], r["enabled"]) for r in _rules(client, a)] == [("all", True)]

    other = Browser(client.app, client=("127.0.0.1", 50022))
    assert other.login("owner-b@example.com") == 303
    assert other.get(base).status_code == 404
    token = other.csrf(f"/project/{b.id}/settings")
    answer = other.post(f"{base}/rules/{rule['id']}/toggle",
                        data={"csrf_token": token, "enabled": "0"})  # fmt: skip
    assert answer.status_code == 404
    assert _rules(client, a)[0]["enabled"] is True
