"""Which operations of Langfuse's public API Lanterna serves.

    python tests/route_coverage.py [--spec langfuse-openapi.yml]

lists the spec's operations (``METHOD path``; by default from
``tests/data/langfuse-api-paths.txt``, the list taken from the spec; ``--spec`` reads
an OpenAPI file instead), the server's routes (its OpenAPI document), prints how many
are served and which are not, and exits 1 when any is not. Path parameters match
whatever their names (``{projectId}`` and ``{project_id}`` are one path).
``tests/test_route_coverage.py`` runs it in the suite with the list of operations
still missing (each with its open issue), which may only shrink.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PATHS_FILE = Path(__file__).resolve().parent / "data" / "langfuse-api-paths.txt"
METHODS = ("get", "post", "put", "patch", "delete")


def _blank(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def spec_operations(spec: Path | None = None) -> list[str]:
    """The spec's operations as ``METHOD path``, in the file's order."""
    if spec is None:
        lines = PATHS_FILE.read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    import yaml

    document = yaml.safe_load(spec.read_text())
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    ]


def served_operations() -> set[str]:
    """``METHOD path`` (parameters blanked) of every route in the server's OpenAPI."""
    from lanterna.server.app import create_app
    from lanterna.server.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        paths = create_app(Settings(data_dir=data_dir)).openapi()["paths"]
    return {f"{m.upper()} {_blank(p)}" for p, item in paths.items() for m in item}


def missing_operations(spec: Path | None = None) -> tuple[list[str], list[str]]:
    """``(the spec's operations, those the server does not serve)``."""
    wanted = spec_operations(spec)
    served = served_operations()
    return wanted, [op for op in wanted if _blank_op(op) not in served]


def _blank_op(op: str) -> str:
    method, path = op.split(" ", 1)
    return f"{method} {_blank(path)}"


def main(argv: list[str] | None = None) -> int:
    """Print the count and the missing operations; 1 when any is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, help="an OpenAPI file (default: the stored list)")
    args = parser.parse_args(argv)
    wanted, missing = missing_operations(args.spec)
    print(f"{len(wanted) - len(missing)} of {len(wanted)} spec operations served")
    for op in missing:
        print(f"  not served: {op}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
