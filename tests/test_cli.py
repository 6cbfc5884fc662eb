"""The ``lanterna`` command: keys create/list/revoke and migrate, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lanterna.cli import main
from lanterna.server.app import create_app
from lanterna.store.db import Database
from support import make_settings


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def _bootstrap(db_url: str) -> None:
    from lanterna.cli import _in_transaction
    from lanterna.store import projects

    assert _in_transaction(db_url, projects.bootstrap) is not None


def _keys(out: str) -> tuple[str, str]:
    public = re.search(r"^LANGFUSE_PUBLIC_KEY=(pk-lf-\S+)$", out, re.M)
    secret = re.search(r"^LANGFUSE_SECRET_KEY=(sk-lf-\S+)$", out, re.M)
    assert public and secret, out
    return public.group(1), secret.group(1)


def test_keys_create_list_revoke(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _bootstrap(db_url)
    assert main(["keys", "create", "--note", "ci key", *_db_args(db_url)]) == 0
    public, secret = _keys(capsys.readouterr().out)

    app = create_app(make_settings(db_url, tmp_path))
    with TestClient(app) as client:
        assert client.get("/api/public/projects", auth=(public, secret)).status_code == 200

        assert main(["keys", "list", *_db_args(db_url)]) == 0
        listing = capsys.readouterr().out
        assert public in listing and "ci key" in listing and "active" in listing
        assert secret not in listing
        assert f"sk-lf-...{secret[-4:]}" in listing

        assert main(["keys", "revoke", public, *_db_args(db_url)]) == 0
        assert "revoked" in capsys.readouterr().out
        from lanterna.server.auth import key_cache

        key_cache.clear()  # the server forgets verified keys within seconds; skip the wait
        response = client.get("/api/public/projects", auth=(public, secret))
        assert response.status_code == 401
        assert "message" in response.json()

    assert main(["keys", "revoke", public, *_db_args(db_url)]) == 1
    assert "no active key" in capsys.readouterr().err


def test_secret_is_stored_only_as_a_salted_hash(db_url: str, capsys: pytest.CaptureFixture[str]):
    _bootstrap(db_url)
    main(["keys", "create", *_db_args(db_url)])
    _public, secret = _keys(capsys.readouterr().out)
    db = Database(db_url)
    with db.read() as conn:
        rows = conn.all("SELECT * FROM api_keys")
    db.close()
    stored = repr(rows)
    assert secret not in stored
    assert secret.removeprefix("sk-lf-") not in stored
    assert len({r["secret_salt"] for r in rows}) == len(rows)  # one salt per key
    if db_url.startswith("sqlite:///"):
        raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        assert secret.encode() not in raw


def test_keys_create_needs_project_when_several(db_url: str, capsys: pytest.CaptureFixture[str]):
    from support import new_project

    _bootstrap(db_url)
    other = new_project(db_url, "Second")
    with pytest.raises(SystemExit, match="--project"):
        main(["keys", "create", *_db_args(db_url)])
    assert main(["keys", "create", "--project", other.id, *_db_args(db_url)]) == 0
    assert f"project: {other.id}" in capsys.readouterr().out


def test_migrate_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["migrate", "--data-dir", str(tmp_path)]
    assert main(args) == 0
    assert "0001_core" in capsys.readouterr().out
    assert main(args) == 0
    assert "applied 0 migration(s)" in capsys.readouterr().out


def test_an_unknown_log_level_is_refused_before_anything_is_set_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # Before, it passed the parser, created the database and printed new keys, then
    # failed inside uvicorn.
    with pytest.raises(SystemExit) as ended:
        main(["serve", "--data-dir", str(tmp_path), "--log-level", "verbose"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'verbose'" in err and "LANGFUSE_SECRET_KEY" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("host", "printed"),
    [
        ("127.0.0.1", "http://localhost:3999"),
        ("0.0.0.0", "http://localhost:3999"),
        ("10.0.0.5", "http://10.0.0.5:3999"),
        ("::1", "http://[::1]:3999"),  # was http://::1:3999, not a URL
        ("fe80::1", "http://[fe80::1]:3999"),
    ],
)
def test_the_printed_langfuse_host_is_a_url_for_any_bound_host(
    tmp_path: Path, host: str, printed: str
):
    from lanterna.server.settings import Settings

    settings = Settings.from_env(host=host, port=3999, data_dir=str(tmp_path))
    assert settings.base_url == printed
