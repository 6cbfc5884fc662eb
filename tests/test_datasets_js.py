"""Datasets with the official Langfuse JS SDK (``@langfuse/client`` 5.x, installed by
``scripts/test`` from tests/clients/js/package.json into ``.venvs/langfuse-js``): create a
dataset and items, fetch the dataset with its items (paged), link a trace in a run and
read the run back."""

from __future__ import annotations

import pytest

from support import run_node_script

pytestmark = pytest.mark.slow


def test_js_sdk_creates_and_fetches_datasets(live_server):
    result = run_node_script(
        "langfuse-js",
        "js/datasets.cjs",
        {
            "LANGFUSE_PUBLIC_KEY": live_server.project.public_key,
            "LANGFUSE_SECRET_KEY": live_server.project.secret_key,
            "LANGFUSE_BASE_URL": live_server.url,
        },
    )
    assert result["metadata"] == {"sdk": "js"}
    assert result["firstId"] == "js-item-1" and result["mediaReferences"] == []
    assert len(result["items"]) == 2 and "js-item-1" in result["items"]
    assert result["expected"][-1] == "pong"
    assert result["hasRunExperiment"] is True
    assert result["runItemRunName"] == "js-run"
    assert result["runItems"] == ["0af7651916cd43dd8448eb211c80319c"]
    assert result["missing"] == 404
