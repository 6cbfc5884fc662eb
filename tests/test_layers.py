"""The package layering (``[tool.importlinter]`` in pyproject.toml) holds: ``lint-imports``
passes, as a contributor would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_sql_store_has_every_operation_of_the_store_interface() -> None:
    """mypy checks the signatures (``SqlStore.__init__``); this checks that the server's
    store object offers every operation the interface names."""
    import inspect

    from lanterna.store import interface

    store = interface.sql_store()
    resources = inspect.get_annotations(interface.Store, eval_str=True)
    assert len(resources) >= 9
    for resource, protocol in resources.items():
        operations = [n for n in protocol.__dict__ if not n.startswith("_")]
        assert operations, resource
        for operation in operations:
            assert callable(getattr(getattr(store, resource), operation)), (resource, operation)
