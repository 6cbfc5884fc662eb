"""In a real browser: make a dataset item from a trace, run our SDK's ``dataset.run``
over the dataset twice, then compare the runs side by side (outputs, scores, deltas).
Also: a viewer reads but cannot write, and item text is shown, never run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import Site, login, shot
from helpers import event
from lanterna import Lanterna, create_dataset, create_dataset_item, get_dataset, set_client

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def sdk(site: Site) -> Iterator[Lanterna]:
    """Our SDK's client of the site (the process-wide one while the test runs)."""
    previous = set_client(None)
    p = site.project
    client = Lanterna(
        public_key=p.public_key, secret_key=p.secret_key, host=site.url, flush_interval=0.05
    )
    set_client(client)
    try:
        yield client
    finally:
        client.shutdown(5)
        set_client(previous)


def _ingest(site: Site, *events: dict[str, Any]) -> None:
    answer = httpx.post(
        f"{site.url}/api/public/ingestion", json={"batch": list(events)}, auth=site.project.auth
    )
    assert answer.status_code == 207 and answer.json()["errors"] == [], answer.text


def exact(*, output: Any, expected_output: Any, **_: Any) -> float:
    return 1.0 if output == expected_output else 0.0


def test_dataset_from_a_trace_run_and_compare(site: Site, page, sdk: Lanterna) -> None:
    source = {"id": "tr-src", "name": "answer", "input": "paris?", "output": "PARIS?"}
    odd = {"id": "tr-xss", "name": "odd", "input": XSS, "output": XSS}
    _ingest(site, event("trace-create", source), event("trace-create", odd))
    login(page, site.url, site.owner)
    page.goto(site.path("traces/tr-src"))
    page.get_by_test_id("add-to-dataset").click()
    page.wait_for_load_state()
    form = page.get_by_test_id("new-item-from-trace")
    assert form.locator("textarea[name=input]").input_value() == "paris?"
    assert form.locator("textarea[name=expected_output]").input_value() == "PARIS?"
    form.locator("input[name=dataset]").fill("browser-qa")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("dataset-title").inner_text() == "browser-qa"
    items = page.get_by_test_id("items-table").inner_text()
    assert "paris?" in items and "PARIS?" in items

    # A second item from another trace, whose text must show as text.
    page.goto(site.path("traces/tr-xss"))
    page.get_by_test_id("add-to-dataset").click()
    page.wait_for_load_state()
    page.get_by_test_id("new-item-from-trace").locator("input[name=dataset]").fill("browser-qa")
    page.get_by_test_id("new-item-from-trace").locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert XSS in page.get_by_test_id("items-table").inner_text()
    shot(page, "dataset")

    dataset = get_dataset("browser-qa", client=sdk)
    assert len(dataset.items) == 2
    dataset.run(lambda t: t if t == XSS else t.upper(), evaluators=[exact], run_name="upper")
    dataset.run(lambda text: text, evaluators=[exact], run_name="echo")

    page.reload()
    runs = page.get_by_test_id("runs-table")
    assert "upper" in runs.inner_text() and "echo" in runs.inner_text()
    for name in ("upper", "echo"):
        runs.locator(f"tr[data-run='{name}'] input[type=checkbox]").check()
    page.get_by_test_id("compare").click()
    page.wait_for_load_state()
    assert "/compare?" in page.url
    table = page.get_by_test_id("comparison")
    row = table.locator("tr", has_text="paris?")
    outputs = [o.inner_text() for o in row.get_by_test_id("output").all()]
    assert sorted(outputs) == ["PARIS?", "paris?"]
    aggregates = page.get_by_test_id("aggregates").inner_text()
    assert "exact" in aggregates
    # The runs in the table's order (newest first): echo matched one item of two (0.5),
    # upper both (1.0).
    assert page.get_by_test_id("delta").inner_text() == "+0.500"
    shot(page, "dataset-compare")


def test_viewer_reads_datasets_but_cannot_write(site: Site, page, sdk: Lanterna) -> None:
    create_dataset("read-only", description="for viewers", client=sdk)
    create_dataset_item("read-only", input={"q": 1}, client=sdk)
    login(page, site.url, site.viewer)
    page.goto(site.path("datasets"))
    assert "read-only" in page.get_by_test_id("datasets-table").inner_text()
    assert page.get_by_test_id("new-dataset").count() == 0
    page.click("a:text('read-only')")
    page.wait_for_load_state()
    assert page.get_by_test_id("new-item").count() == 0
    assert '"q"' in page.get_by_test_id("items-table").inner_text()
