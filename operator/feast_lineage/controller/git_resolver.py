"""Git revisions resolved off the reconcile path: a slow or hostile Git remote holds no reconcile
worker and no object lock.

A pass asks for the commit of its project's revision. It gets the last answer at once (a commit, or
the :class:`GitError` of the last try) and a fresh ``git ls-remote`` starts on a small pool of its
own; when that answer differs from the one the pass used, the project is woken for another pass.
Only the very first question of a project has no answer yet: the pass stops there
(:class:`ResolutionPending`) and the wake-up brings it back. Each ``ls-remote`` is itself bounded in
time and output (:func:`.git_remote.resolve_commit`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from feast_lineage.controller.git_remote import GitCredentials, GitError, resolve_commit

log = logging.getLogger(__name__)

ProjectKey = tuple[str, str]
"""(namespace, name) of a FeatureStoreProject."""
Resolve = Callable[[str, str, GitCredentials, float, Sequence[str]], str]

FRESH_SECONDS = 2.0
"""An answer this recent is used without asking again: the pass a wake-up causes asks nothing new."""


class ResolutionPending(Exception):
    """The project's revision has never been resolved with these settings; a wake-up follows."""


@dataclass(frozen=True)
class GitRequest:
    url: str
    revision: str
    credentials: GitCredentials
    timeout: float
    protocols: tuple[str, ...]


@dataclass
class _Entry:
    request: GitRequest
    outcome: str | GitError | None = None
    answered_at: float = 0.0
    in_flight: Future[None] | None = field(default=None, repr=False)


class GitResolver:
    def __init__(self, wake: Callable[[ProjectKey], None], workers: int = 4, resolve: Resolve = resolve_commit) -> None:
        self._wake = wake
        self._resolve = resolve
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="git-resolve")
        self._lock = threading.Lock()
        self._entries: dict[ProjectKey, _Entry] = {}

    def commit(self, project: ProjectKey, request: GitRequest) -> str:
        """The commit last resolved for ``project``'s revision; raises its :class:`GitError`, or
        :class:`ResolutionPending` on the first question. Starts a fresh resolution unless one runs."""
        with self._lock:
            entry = self._entries.get(project)
            if entry is None or entry.request != request:
                entry = _Entry(request)
                self._entries[project] = entry
            fresh = entry.outcome is not None and time.monotonic() - entry.answered_at < FRESH_SECONDS
            if entry.in_flight is None and not fresh:
                entry.in_flight = self._pool.submit(self._answer, project, entry)
            outcome = entry.outcome
        if outcome is None:
            raise ResolutionPending(f"resolving {request.revision!r}")
        if isinstance(outcome, GitError):
            raise outcome
        return outcome

    def refresh(self, project: ProjectKey) -> None:
        """Ask ``project``'s remote again with the request it last made, unless an answer is on its
        way; a changed answer wakes the project. Nothing to ask before its first pass asked."""
        with self._lock:
            entry = self._entries.get(project)
            if entry is not None and entry.in_flight is None:
                entry.in_flight = self._pool.submit(self._answer, project, entry)

    def forget(self, project: ProjectKey) -> None:
        with self._lock:
            self._entries.pop(project, None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _answer(self, project: ProjectKey, entry: _Entry) -> None:
        request = entry.request
        outcome: str | GitError
        try:
            outcome = self._resolve(
                request.url, request.revision, request.credentials, request.timeout, request.protocols
            )
        except GitError as error:
            outcome = error
        except Exception as error:  # a bug must not leave the project pending for ever
            log.exception("resolving a Git revision failed unexpectedly")
            outcome = GitError("GitUnreachable", f"resolving the revision failed: {type(error).__name__}")
        with self._lock:
            changed = _differs(entry.outcome, outcome)
            entry.outcome, entry.answered_at, entry.in_flight = outcome, time.monotonic(), None
            current = self._entries.get(project) is entry
        if changed and current:
            self._wake(project)


def _differs(before: str | GitError | None, after: str | GitError) -> bool:
    if isinstance(before, GitError) and isinstance(after, GitError):
        return (before.reason, before.message) != (after.reason, after.message)
    return before != after
