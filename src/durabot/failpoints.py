"""Named crash points for tests that kill the process at an exact moment (``DURABOT_FAILPOINTS``).

``DURABOT_FAILPOINTS="polling.after_fetch"`` makes the process kill itself with SIGKILL the
first time it reaches that point; ``name:3`` on the third time. Unset, every point is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def _armed() -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in os.environ.get("DURABOT_FAILPOINTS", "").split(","))):
        name, _, count = item.partition(":")
        armed[name] = int(count) if count.isdigit() else 1
    return armed


def failpoint(name: str) -> None:
    """Die here, as ``kill -9`` would, if the environment arms this point."""
    armed = _armed()
    if name not in armed:
        return
    _hits[name] += 1
    if _hits[name] == armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
