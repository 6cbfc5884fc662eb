"""The log audit (tests/log_audit.py) that fails the run when a secret reaches a log
record: it finds registered secrets and secret-shaped text, and nothing else."""

from __future__ import annotations

import logging

import log_audit


def test_a_logged_secret_is_found_and_plain_records_are_not():
    log = logging.getLogger("lanterna.audit-test")
    log.setLevel(logging.DEBUG)  # whatever level an earlier test left on the root logger
    before = len(log_audit.capture.lines)
    log.debug("a harmless line about project p1")
    log.warning("auth failed for key sk-lf-0123abcd-aaaa")
    log.info("password was %s", "hunter2-registered")
    log.error("header Basic cGstbGYtMTIzOnNrLWxmLTQ1Ng==")
    log.warning("cookie lanterna_session=abcdefgh12345678")
    new = log_audit.capture.lines[before:]
    try:
        found = log_audit.findings({"hunter2-registered"})
        assert [line for line in found if line in new] == new[1:]
    finally:
        del log_audit.capture.lines[before:]  # the run itself stays clean
