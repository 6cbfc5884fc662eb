"""The server stays light at start: heavy optional libraries load on first use (an A/B
readout, a Parquet export, a JSON-schema check, gRPC, S3), never when the app is built."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "statsmodels", "pandas", "numpy", "pyarrow", "jsonschema", "rapidfuzz",
         "grpc", "boto3", "botocore")  # fmt: skip


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
