"""Work on threads that Ctrl-C never waits for: engines that may not answer, asked in parallel.

A node whose engine is frozen accepts a connection and never answers: a request to it
ends only at its deadline.  `concurrent.futures.ThreadPoolExecutor` would keep Ctrl-C
waiting for it twice: leaving a `with` block joins the pool, and so does the interpreter
at exit (its workers are joined by an exit hook).  Here each call runs on a daemon
thread of its own, and the caller waits in short slices, so KeyboardInterrupt reaches it
within one slice; the workers still running are abandoned (they end at their own
deadline, or with the process).  What they may have created on an engine is the
caller's to remove (agents.py does).

The workers never enter a namespace (architecture.md fact 1): they talk to sockets and
programs only.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["run_each", "start", "wait_all"]

T = TypeVar("T")

#: how long the caller sleeps between two looks (and so the longest Ctrl-C waits)
_SLICE = 0.1


def start(func: Callable[..., T], *args: Any, name: str = "worker") -> Future[T]:
    """`func(*args)` on a new daemon thread; its Future (result or exception)."""
    future: Future[T] = Future()

    def body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = func(*args)
        except BaseException as exc:  # handed to whoever asks the future
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future


def wait_all(futures: Iterable[Future[Any]], timeout: float | None = None) -> bool:
    """Wait until every future is done, or `timeout` seconds; whether all are done.

    The wait is cut in slices of 0.1 s, so a signal handler's exception (Ctrl-C's
    KeyboardInterrupt) is raised here at once.
    """
    pending = set(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
        if left <= 0:
            return False
        _done, pending = concurrent.futures.wait(pending, timeout=left)
    return True


def run_each(func: Callable[[Any], T], items: Iterable[Any], *, name: str = "worker") -> list[T]:
    """`func(item)` for every item, each on its own daemon thread; the results in order.

    An exception of a call is raised here; Ctrl-C raises KeyboardInterrupt at once and
    leaves the calls still running behind (see the module's docstring).
    """
    futures = [start(func, item, name=f"{name}-{i}") for i, item in enumerate(items)]
    wait_all(futures)
    return [f.result() for f in futures]
