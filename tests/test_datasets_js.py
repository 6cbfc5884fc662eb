"""Datasets with the official Langfuse JS SDK (``@langfuse/client`` 5.x, installed by
``scripts/test`` from tests/clients/js/package.json into ``.venvs/langfuse-js``): create a
dataset and items, fetch the dataset with its items (paged), link a trace in a run and
read the run back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from support import CLIENTS, ROOT

pytestmark = pytest.mark.slow

MODULES = ROOT / ".venvs" / "langfuse-js" / "node_modules"


def test_js_sdk_creates_and_fetches_datasets(live_server):
    node = shutil.which("node")
    if node is None or not (MODULES / "@langfuse" / "client").is_dir():
        pytest.fail(
            f"node or {MODULES}/@langfuse/client is missing: run scripts/test, which"
            " installs tests/clients/js/package.json into .venvs/langfuse-js"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    env.update(
        NODE_PATH=str(MODULES),
        LANGFUSE_PUBLIC_KEY=live_server.project.public_key,
        LANGFUSE_SECRET_KEY=live_server.project.secret_key,
        LANGFUSE_BASE_URL=live_server.url,
    )
    proc = subprocess.run(
        [node, str(CLIENTS / "js" / "datasets.cjs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["metadata"] == {"sdk": "js"}
    assert result["firstId"] == "js-item-1" and result["mediaReferences"] == []
    assert len(result["items"]) == 2 and "js-item-1" in result["items"]
    assert result["expected"][-1] == "pong"
    assert result["hasRunExperiment"] is True
    assert result["runItemRunName"] == "js-run"
    assert result["runItems"] == ["0af7651916cd43dd8448eb211c80319c"]
    assert result["missing"] == 404
