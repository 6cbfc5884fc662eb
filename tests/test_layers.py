"""The package layering (``[tool.importlinter]`` in pyproject.toml) holds: ``lint-imports``
passes, as a contributor would run it."""

from __future__ import annotations

import os
import re
import shutil
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


def _store_interface_forbidden() -> set[str]:
    """The store modules the ``store-interface`` contract forbids (tomllib is 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text[text.index('id = "store-interface"') :]
    section = section[: section.index("]", section.index("forbidden_modules"))]
    return set(re.findall(r'"lanterna\.store\.(\w+)"', section))


#: The store modules routes and the read layer may import: the interface, and types and
#: parsing (see store/interface.py's docstring). Every other store module is an
#: operation module the ``store-interface`` contract must name.
TYPES_AND_PARSING = {
    "__init__",
    "interface",
    "protocols",
    "db",
    "dialect",
    "filters",
    "writer",
    "files",
}


def test_every_store_module_is_either_types_or_kept_behind_the_interface() -> None:
    """A new query module under store/ cannot slip past the contract unnamed."""
    forbidden = _store_interface_forbidden()
    store = ROOT / "src" / "lanterna" / "store"
    modules = {p.stem for p in store.glob("*.py")}
    modules |= {p.parent.name for p in store.glob("*/__init__.py")}
    assert not forbidden & TYPES_AND_PARSING
    assert modules - TYPES_AND_PARSING == forbidden, "name it in the store-interface contract"


def test_the_store_interface_contract_breaks_on_a_direct_import(tmp_path: Path) -> None:
    """A route that imports a store operation module again breaks ``lint-imports``."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "lanterna", copy / "lanterna")
    route = copy / "lanterna" / "server" / "api" / "traces.py"
    route.write_text(route.read_text() + "\nfrom ...store import traces as direct  # noqa\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    assert "lanterna.server.api.traces -> lanterna.store.traces" in done.stdout
    assert "1 broken" in done.stdout
