"""Permissions of the SQLite data: only the server's own OS user may read it.

The data directory is made ``0700`` and the database file ``0600`` before SQLite first
opens it; SQLite gives its ``-wal`` and ``-shm`` files the database file's mode. An
installation made before (a ``0755`` folder, ``0644`` files) is tightened when the
database is opened, with a log line for each change.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("lanterna.store")

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    # Only what we own, and never a shared folder such as /tmp (sticky bit).
    if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX or current & ~mode == 0:
        return
    path.chmod(current & mode)
    log.warning(
        "tightened the permissions of %s from %o to %o (only the server's user may read it)",
        path,
        current,
        current & mode,
    )


def secure_sqlite(db_path: Path) -> None:
    """Create the folder ``0700`` and the database ``0600``, or tighten existing ones."""
    folder = db_path.parent
    if not folder.exists():
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(folder, DIR_MODE)
    if not db_path.exists():
        os.close(os.open(db_path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        _tighten(db_path.with_name(db_path.name + suffix), FILE_MODE)
