"""Every CLI flag, setting and endpoint has documentation (datasette's habit)."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from lanterna.cli import build_parser
from lanterna.server.app import create_app
from lanterna.server.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _all_docs() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found - {"--help", "--no-access-log"}


def test_every_cli_flag_is_documented():
    text = (DOCS / "cli.md").read_text()
    missing = sorted(
        o for o in _options(build_parser()) if not re.search(rf"(?<![\w-]){o}(?![\w-])", text)
    )
    assert not missing, f"undocumented flags in docs/cli.md: {missing}"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    missing = [
        f.name
        for f in dataclasses.fields(Settings)
        if f"LANTERNA_{f.name.upper()}" not in text or f"`{f.name}`" not in text
    ]
    assert not missing, f"undocumented settings in docs/settings.md: {missing}"


def test_every_endpoint_is_documented(tmp_path: Path):
    app = create_app(Settings(data_dir=str(tmp_path)))
    # Path parameters may be named differently in prose: compare with names blanked.
    text = re.sub(r"\{[^}]*\}", "{}", _all_docs().replace("`", ""))
    paths = app.openapi()["paths"]
    public = [p for p in paths if p.startswith(("/api/public", "/v1/"))]
    assert len(public) > 20, "the OpenAPI schema should list the public API"
    missing = []
    for path in public:
        documented_path = re.sub(r"\{[^}]*\}", "{}", path)
        for method in sorted(m.upper() for m in paths[path]):
            if f"{method} {documented_path}" not in text:
                missing.append(f"{method} {documented_path}")
    assert not missing, f"undocumented endpoints: {missing}"


def test_coming_from_langfuse_lists_exactly_the_routes_we_lack(tmp_path: Path):
    # The page's "Not available yet" section must name each path of Langfuse's spec that
    # we do not serve (with every method), and nothing we serve in full: it stays true
    # as routes land.
    listed = (DOCS.parent / "tests/data/langfuse-api-paths.txt").read_text().splitlines()
    ours = create_app(Settings(data_dir=str(tmp_path))).openapi()["paths"]
    served = {(m.upper(), _blank(path)) for path, item in ours.items() for m in item}
    lacking = {
        _blank(path)
        for method, path in (line.split(" ", 1) for line in listed if not line.startswith("#"))
        if (method, _blank(path)) not in served
    }
    page = (DOCS / "coming-from-langfuse.md").read_text()
    section = page.split("## Not available yet", 1)[1]
    named = {_blank(p) for p in re.findall(r"`(/api/public/[^`\s]*)`", section)}
    assert named == lacking, (sorted(named - lacking), sorted(lacking - named))


def _blank(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_relative_links_in_readme_and_docs_point_at_files():
    root = DOCS.parent
    broken = []
    for page in [root / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert not broken, broken
