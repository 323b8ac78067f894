"""A debug line as each pass over an object ends: the evidence that the operator has looked at it again.

Saying that nothing happens (no second apply, a finished run left alone, a deleted project's metrics
gone for good) means something only once the operator has demonstrably looked again: a line per
pass, with when the pass started and how it ended, shows that it has, where a guessed wait would not.

Why a log line: a metric labelled per object would be a series per run (thousands), an Event or a
status field one more API write per pass. The line is written at ``--log-level=debug`` only; at the
default level a pass pays a clock read and a level check, nothing more.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from feast_lineage.controller.logs import object_fields

log = logging.getLogger(__name__)

PASS_DONE = "pass done"
"""The line's message starts with this."""

# How a pass ended.
OK = "ok"  # looked, decided, acted
STALLED = "stalled"  # the object is stalled with the reason
GONE = "gone"  # the object no longer exists
DELETING = "deleting"  # it is being deleted: nothing more is done for it
FINISHED = "finished"  # a run that had ended already: nothing to look at
WAITING = "waiting"  # waits for an answer that wakes it (a Git server's first)
SETTLED = "settled"  # a settled project's resync: only its Git revision asked again
ERROR = "error"  # raised; retried by whoever asked for the pass

S = TypeVar("S")
P = ParamSpec("P")


def pass_done(kind: str, namespace: str, name: str, outcome: str, started: float) -> None:
    """``started``: the wall clock (``time.time()``) as the pass began, before it read anything."""
    if log.isEnabledFor(logging.DEBUG):
        fields = {**object_fields(namespace, name), "kind": kind, "outcome": outcome, "started": round(started, 3)}
        log.debug("%s: %s %s", PASS_DONE, kind, outcome, extra=fields)


def logged_pass(
    kind: str,
) -> Callable[[Callable[Concatenate[S, str, str, P], str]], Callable[Concatenate[S, str, str, P], str]]:
    """A pass method ``(self, namespace, name, ...) -> outcome`` that ends with its line (``error`` if it raises)."""

    def decorate(method: Callable[Concatenate[S, str, str, P], str]) -> Callable[Concatenate[S, str, str, P], str]:
        @functools.wraps(method)
        def run(self: S, namespace: str, name: str, /, *args: P.args, **kwargs: P.kwargs) -> str:
            started, outcome = time.time(), ERROR
            try:
                outcome = method(self, namespace, name, *args, **kwargs)
                return outcome
            finally:
                pass_done(kind, namespace, name, outcome, started)

        return run

    return decorate
