"""Environment names: normalised the same way for every entity and every wire format."""

from __future__ import annotations

import re

_VALID = re.compile(r"[a-z0-9_-]+")
DEFAULT = "default"
#: The environment of the evaluation judge's own traces: their cost is the evaluation's,
#: never the app's (budgets, alerts and dashboards leave it out unless asked for it).
EVALUATION_ENVIRONMENT = "lanterna-evaluation"


def normalize_environment(value: object) -> str:
    """Lower-case, strip ``langfuse`` prefixes, cut to 40 chars; ``default`` if unusable.

    Never an error: a bad environment name becomes ``default``.
    """
    if not isinstance(value, str):
        return DEFAULT
    env = value.strip().lower()
    while True:
        for prefix in ("langfuse-", "langfuse_", "langfuse"):
            if env.startswith(prefix):
                env = env[len(prefix) :]
                break
        else:
            break
    env = env[:40]
    if not env or not _VALID.fullmatch(env):
        return DEFAULT
    return env
