"""Every operation of Langfuse's public API is served, but the ones of still-open
issues listed here (each with its issue). The list may only shrink: an operation that
lands must leave it (the test fails while it is still listed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from route_coverage import main, missing_operations, spec_operations

#: Operations not served yet, with the open issue that brings them.
STILL_MISSING: dict[str, str] = {}

#: The spec beside the checkout (``../shared/reference/`` of the main checkout or of a
#: worktree under ``wt/``), when it is there.
_HERE = Path(__file__).resolve()
SHARED_SPEC = next(
    (
        up / "shared" / "reference" / "langfuse-openapi.yml"
        for up in _HERE.parents[2:4]
        if (up / "shared" / "reference" / "langfuse-openapi.yml").exists()
    ),
    _HERE.parent / "no-spec",
)


def test_every_spec_operation_is_served_but_the_listed_ones(capsys):
    wanted, missing = missing_operations()
    assert len(wanted) == 114
    unexpected = sorted(set(missing) - set(STILL_MISSING))
    assert not unexpected, f"spec operations not served: {unexpected}"
    landed = sorted(set(STILL_MISSING) - set(missing))
    assert not landed, f"served now: take them out of STILL_MISSING: {landed}"
    # The script prints the count and what is missing (and fails while anything is).
    assert main([]) == (1 if missing else 0)
    out = capsys.readouterr().out
    assert f"{len(wanted) - len(missing)} of {len(wanted)} spec operations served" in out
    print(out)


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="the spec file is not beside the checkout")
def test_stored_list_is_the_specs():
    assert sorted(spec_operations(SHARED_SPEC)) == sorted(spec_operations())
