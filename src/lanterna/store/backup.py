"""Backup and restore of an SQLite database with SQLite's online backup API.

:func:`backup` copies a database that a server may be writing at the same time: the
copy is made in one step inside one read transaction, so it is the database as of one
commit (in WAL mode readers never block the writer, and the writer does not block the
copy). The copy goes to a temporary file beside the destination, is checked with
``PRAGMA integrity_check`` and only then renamed into place (mode ``0600``), so a
destination file is always a whole backup. :func:`restore` copies a backup over a
database (stop the server first) through the same API. PostgreSQL uses its own tools
(``pg_dump``/``pg_restore``: docs/operations.md).

Media bytes in the local blob folder are not in the database: :func:`copy_media` copies
the blobs a database's media records hold (read from the backup itself, so they match
it) into a folder beside the backup (:func:`media_folder_of`), and back on restore.
Content-addressed, so a blob already there is not copied again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .blobs import LocalBlobs
from .files import FILE_MODE


class BackupError(Exception):
    """A backup or restore that cannot be made; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore copied."""

    path: Path
    pages: int
    bytes: int


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the database at ``path`` (``ok`` when sound)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


def _copy(
    source: sqlite3.Connection,
    target: sqlite3.Connection,
    progress: Callable[[int, int], None] | None,
) -> int:
    def report(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    # pages=-1: the whole database in one step, inside one read transaction of the
    # source, so the copy is one consistent snapshot however busy the writer is.
    source.backup(target, pages=-1, progress=report)
    return int(target.execute("PRAGMA page_count").fetchone()[0])


def backup(
    source_path: Path, dest: Path, *, progress: Callable[[int, int], None] | None = None
) -> BackupResult:
    """Copy the SQLite database at ``source_path`` to ``dest`` (a file; made ``0600``).
    Raises :class:`BackupError` when the source is missing or the copy is unsound."""
    source_path, dest = Path(source_path), Path(dest)
    if not source_path.is_file():
        raise BackupError(f"no database at {source_path}")
    if dest.is_dir():
        raise BackupError(f"{dest} is a folder: give the backup file's name")
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, FILE_MODE)
    os.close(fd)
    source = _connect(source_path)
    target = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        pages = _copy(source, target, progress)
        # A backup is one self-contained file: no WAL beside it.
        target.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None
    finally:
        target.close()
        source.close()
    check = integrity(tmp)
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check: {check}")
    tmp.replace(dest)
    return BackupResult(dest, pages, dest.stat().st_size)


def restore(
    backup_path: Path,
    target_path: Path,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BackupResult:
    """Copy the backup at ``backup_path`` over the database at ``target_path`` (which
    holds nothing, or ``force``). Stop every server using the target first."""
    backup_path, target_path = Path(backup_path), Path(target_path)
    if not backup_path.is_file():
        raise BackupError(f"no backup at {backup_path}")
    check = integrity(backup_path)
    if check != "ok":
        raise BackupError(f"{backup_path} failed its integrity check: {check}")
    if target_path.exists() and target_path.stat().st_size > 0 and not force:
        raise BackupError(
            f"{target_path} exists: stop the server using it and pass --force to replace it"
        )
    target_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not target_path.exists():
        os.close(os.open(target_path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    source = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    target = _connect(target_path)
    try:
        pages = _copy(source, target, progress)
        target.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise BackupError(f"restore failed: {exc}") from None
    finally:
        target.close()
        source.close()
    return BackupResult(target_path, pages, target_path.stat().st_size)


def media_folder_of(backup_path: Path) -> Path:
    """The folder beside a backup file that holds its media blobs (``<file>.media``)."""
    backup_path = Path(backup_path)
    return backup_path.with_name(f"{backup_path.name}.media")


def copy_media(db_path: Path, source: Path, target: Path) -> int:
    """Copy the uploaded media blobs the SQLite database at ``db_path`` refers to from
    the blob folder ``source`` to ``target`` (each written durably; those already in
    ``target`` skipped); how many were copied. A blob missing from ``source`` is a
    :class:`BackupError` naming it."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT DISTINCT sha256 FROM media WHERE uploaded_at IS NOT NULL ORDER BY sha256"
        ).fetchall()
    except sqlite3.OperationalError:  # a database from before media existed
        rows = []
    finally:
        conn.close()
    have, want = LocalBlobs(source), LocalBlobs(target)
    copied = 0
    for (key,) in rows:
        if want.exists(key):
            continue
        if not have.exists(key):
            raise BackupError(f"media blob {key} is missing from {source}")
        want.write(key, [have.read(key)])
        copied += 1
    return copied
