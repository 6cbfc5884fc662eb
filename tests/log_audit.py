"""The suite-wide check that no secret reaches the log (issue: secrets are never logged).

Every log record any in-process server (and the CLI, the SDK, the test clients) emits
during the whole run is formatted, with tracebacks, and kept; the ``lanterna`` loggers
run at DEBUG so that nothing is hidden by a level. At the end each process scans what it
kept for the secrets the tests made (API secret keys, passwords, session and device
cookies) and for anything shaped like one (``sk-lf-...``, a Basic authorization header, a
``lanterna_session=`` cookie); the controller fails the run, naming the record, if any
process found one. ``support.SECRETS`` is where tests register the secrets they make.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

#: Shapes a secret takes whatever test made it.
SHAPES = [
    re.compile(r"sk-lf-[0-9a-fA-F-]{8,}"),
    re.compile(r"Basic [A-Za-z0-9+/]{24,}={0,2}"),
    re.compile(r"lanterna_(session|device)=[A-Za-z0-9_\-.]{8,}"),
]


class Capture(logging.Handler):
    """Keeps every record, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # A record that cannot be formatted is not a leak to scan.
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


capture = Capture()


def install() -> None:
    """Attach the capture to the root logger; the ``lanterna`` loggers log everything."""
    logging.getLogger().addHandler(capture)
    logging.getLogger("lanterna").setLevel(logging.DEBUG)


def findings(secrets: set[str]) -> list[str]:
    """The kept records that hold a registered secret or a secret's shape."""
    found = []
    for line in capture.lines:
        if any(s and s in line for s in secrets) or any(p.search(line) for p in SHAPES):
            found.append(line[:500])
    return found


def report_dir() -> Path:
    """Where each xdist worker leaves its findings for the controller."""
    root = Path(os.environ.get("LANTERNA_LOG_AUDIT_DIR", "/tmp/lanterna-log-audit"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_report(name: str, found: list[str], records: int, leaks: list[str]) -> None:
    """This process's findings, how many records it scanned, and the background loops
    its tests left running (``thread_audit``)."""
    report = {"found": found, "records": records, "leaks": leaks}
    (report_dir() / f"{name}.json").write_text(json.dumps(report))


def read_reports() -> tuple[list[str], int, list[str]]:
    """Every process's findings, scanned records and leaked loops, the files removed."""
    found: list[str] = []
    leaks: list[str] = []
    records = 0
    for path in report_dir().glob("*.json"):
        data = json.loads(path.read_text())
        found += data["found"]
        records += data["records"]
        leaks += data["leaks"]
        path.unlink()
    return found, records, sorted(leaks)
