"""An optional spool: batches the exporter could not deliver before the process ended.

Off by default (``spool_dir`` / ``LANTERNA_SPOOL_DIR``). When the exporter stops (at
interpreter exit or ``shutdown()``) while the server is away, each undelivered batch is
written to a file of its own in the directory instead of being dropped; the next
exporter using the directory sends them before anything else, then deletes them.

Files are written whole (a temporary name, fsync, rename), readable only by their owner
(0600 in a 0700 directory: they hold traced inputs and outputs), and claimed by renaming
before they are sent, so several processes sharing a directory send each batch once. A
file claimed by a process that died unsent is claimed again.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

_READY = ".batch"
_CLAIMED = ".sending-"


class Spool:
    """One spool directory (created on first write)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def save(self, body: bytes, events: int) -> Path:
        """Write one encoded ingestion batch of ``events`` events; returns its file."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}-{events}"
        temporary = self.directory / f"{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        final = self.directory / f"{name}{_READY}"
        os.replace(temporary, final)
        return final

    def claim(self) -> Iterator[tuple[Path, bytes]]:
        """Each spooled batch no live process is sending, oldest first, claimed for this
        process: ``(claimed file, body)``. Delete the file once it is dealt with."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.iterdir()):
            if not (path.name.endswith(_READY) or _orphaned(path.name)):
                continue
            stem = path.name.split(".", 1)[0]
            mine = path.with_name(f"{stem}{_CLAIMED}{os.getpid()}")
            try:
                os.rename(path, mine)
            except FileNotFoundError:  # another process claimed it first
                continue
            yield mine, mine.read_bytes()


def _orphaned(name: str) -> bool:
    """A claimed file whose process no longer exists."""
    _, sep, pid = name.partition(_CLAIMED)
    if not sep or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False
