"""The A/B test pages in headless Chromium, on both backends: the seed guide's
``ab_test_prompts`` flow (server-side assignment, a ``user_rating`` score) read out in
the browser with the API's figures, the verdict and the charts drawn; the SRM warning on
a skewed split; creating a test through the form (a bad one refused with the reason);
the ad-hoc comparison by ``metadata.variant``, whose group names (any text a client
sent) stay text."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from seed import ingest

from ab_seed import T0, definition, ok, prompts_and_score_config, run_flow
from conftest import Site, login, shot

AB = "/api/public/ab-tests"


def test_seed_flow_readout_in_the_browser(site: Site, page: Any) -> None:
    with httpx.Client(base_url=site.url, auth=site.project.auth, timeout=30) as api:
        prompts_and_score_config(api)
        test = ok(api.post(AB, json=definition()))
        run_flow(api, ok(api.post(f"{AB}/{test['name']}/start")))
        expected = ok(api.get(f"{AB}/{test['name']}/readout"))
    login(page, site.url, site.owner)
    page.goto(site.path("ab-tests"))
    page.click(f"[data-testid=ab-test][data-name='{test['name']}'] a")
    page.wait_for_selector("[data-testid=verdict]")
    verdict = page.locator("[data-testid=verdict]")
    assert verdict.get_attribute("data-status") == "winner"
    assert expected["verdict"]["text"] in verdict.inner_text()
    assert "B beats A on user_rating" in verdict.inner_text()
    p_b = expected["primary"]["comparisons"]["B"]["pValue"]
    shown = page.locator("[data-testid=readout-table] tr[data-variant=B] [data-testid=p-value]")
    assert shown.inner_text().strip() == f"{p_b:.3g}"
    for chart in ("chart-means", "chart-distribution", "chart-cumulative"):
        page.wait_for_selector(f"[data-testid={chart}][data-rendered=true]")
    assert page.locator("[data-testid=srm-warning]").count() == 0
    shot(page, "ab-test-readout")

    # Conclude from the page with B, moving production to version 2.
    page.select_option("form[action$='/conclude'] select[name=winner]", "B")
    page.check("form[action$='/conclude'] input[name=promote]")
    page.click("form[action$='/conclude'] button[type=submit]")
    page.wait_for_selector("[data-testid=state]")
    assert page.locator("[data-testid=state]").inner_text() == "concluded"
    with httpx.Client(base_url=site.url, auth=site.project.auth) as api:
        assert ok(api.get("/api/public/v2/prompts/research_agent"))["version"] == 2


def test_srm_warning_create_form_and_ad_hoc_comparison(site: Site, page: Any) -> None:
    with httpx.Client(base_url=site.url, auth=site.project.auth, timeout=30) as api:
        prompts_and_score_config(api)
        skewed = ok(api.post(AB, json=definition(name="skewed")))
        ok(api.post(f"{AB}/skewed/start"))
    # 300 traces in A and 100 in B under 50/50 weights: a broken split; a client-chosen
    # group name with markup for the ad-hoc comparison.
    events = []
    for i in range(420):
        variant = "A" if i < 300 else ("B" if i < 400 else "<img src=x onerror=alert(1)>")
        trace_id = str(uuid.uuid4())
        meta = {"experiment": skewed["name"], "variant": variant}
        events += [
            {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": T0,
             "body": {"id": trace_id, "timestamp": T0, "userId": f"u{i}", "metadata": meta}},
            {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": T0,
             "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "user_rating",
                      "value": 3 + i % 3, "dataType": "NUMERIC"}},
        ]  # fmt: skip
    ingest(site.url, site.project.auth, events)
    login(page, site.url, site.owner)
    page.goto(site.path("ab-tests/skewed"))
    warning = page.wait_for_selector("[data-testid=srm-warning]")
    assert "Sample ratio mismatch" in warning.inner_text()
    assert page.locator("[data-testid=verdict]").get_attribute("data-status") == "srm"

    # The create form: one variant is refused with the reason, then a good test is made.
    page.goto(site.path("ab-tests"))
    page.fill("#new-ab-test input[name=name]", "checkout-copy")
    page.fill("#new-ab-test textarea[name=variants]", "A 50")
    page.fill("#new-ab-test input[name=primary_metric]", "user_rating")
    page.click("#new-ab-test button[type=submit]")
    assert "at least two variants" in page.locator(".flash.error").inner_text()
    page.fill("#new-ab-test textarea[name=variants]", "A 50\nB 50")
    page.click("#new-ab-test button[type=submit]")
    page.wait_for_selector("[data-testid=state]")
    assert page.locator("[data-testid=state]").inner_text() == "draft"
    assert "/ab-tests/checkout-copy" in page.url

    # Ad-hoc: by metadata.variant, the injected name shown as text, never run.
    page.goto(site.path("ab-tests/compare?groupBy=metadata.variant&metric=user_rating&control=A"))
    page.wait_for_selector("[data-testid=chart-distribution][data-rendered=true]")
    rows = page.locator("[data-testid=readout-table] tbody tr")
    assert rows.count() == 3
    assert (
        "<img src=x onerror=alert(1)>" in page.locator("[data-testid=readout-table]").inner_text()
    )
    assert page.locator("img[src=x]").count() == 0
    shot(page, "ab-test-compare")
