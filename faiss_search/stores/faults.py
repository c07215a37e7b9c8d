"""Named points in the writers where a test may stop the process: the crash-safety tests' seam.

The local writer passes ``WRITE_POINTS`` in order during a build, a Milvus push ``PUSH_POINTS``.
In the shipped program they do nothing: only a test installs a handler, in a process of its
own (``tests/fast_model.py``, which the kill tests run, SIGKILLs itself at the point named by
its FSEARCH_CRASH_AT). A leaf: it imports nothing of fsearch's.
"""

from __future__ import annotations

from collections.abc import Callable

WRITE_POINTS = ("after-first-file", "before-vectors", "after-vectors", "after-commit", "after-manifest")
PUSH_POINTS = ("push-before-publish", "push-after-publish")

_handler: Callable[[str], None] | None = None


def install(handler: Callable[[str], None] | None) -> None:
    """Call ``handler`` with each point's name as the writers pass it (None: stop)."""
    global _handler
    _handler = handler


def point(name: str) -> None:
    if _handler is not None:
        _handler(name)
