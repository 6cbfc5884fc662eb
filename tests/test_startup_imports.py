"""The server stays light at start: heavy optional libraries load on first use (an A/B
readout, a Parquet export, a JSON-schema check, gRPC, S3, a single sign-on), never when
the app is built; the API's documentation models and request-body schemas are built
with the OpenAPI document."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "statsmodels", "pandas", "numpy", "pyarrow", "jsonschema", "rapidfuzz",
         "grpc", "boto3", "botocore", "authlib", "joserfc")  # fmt: skip


def test_building_the_app_imports_no_heavy_library(tmp_path):
    code = (
        "import json, sys\n"
        "from lanterna.server.app import create_app\n"
        "from lanterna.server.settings import Settings\n"
        f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_api_models_are_built_with_the_openapi_document_not_at_start(tmp_path):
    """``POST /api/public/alerts/rules`` documents its body with ``RuleCreate``: the
    model is not built when the app is, and the document still shows its fields."""
    code = (
        "import json\n"
        "from lanterna.server.app import create_app\n"
        "from lanterna.server.settings import Settings\n"
        "from lanterna.server.api.alerts import RuleCreate\n"
        f"app = create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        "before = RuleCreate.__pydantic_complete__\n"
        "doc = app.openapi()\n"
        "body = doc['paths']['/api/public/alerts/rules']['post']['requestBody']\n"
        "print(json.dumps([before, RuleCreate.__pydantic_complete__, body]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, body = json.loads(out.stdout.strip().splitlines()[-1])
    assert (before, after) == (False, True)
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert {"name", "metric"} <= set(schema["required"])
    assert "threshold" in schema["properties"]
