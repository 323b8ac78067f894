"""Git revisions resolved off the reconcile path (real threads; the ls-remote is a stand-in)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from feast_lineage.controller import git_resolver
from feast_lineage.controller.git_remote import GitCredentials, GitError
from feast_lineage.controller.git_resolver import GitRequest, GitResolver, ResolutionPending

PROJECT = ("team", "drivers")
REQUEST = GitRequest("https://git.example/repo.git", "main", GitCredentials(), 20.0, ("https",))


class Remote:
    """Answers ls-remote from a queue the test fills, so the test decides when each call ends."""

    def __init__(self) -> None:
        self.answers: queue.Queue[str | GitError] = queue.Queue()
        self.calls = 0

    def __call__(self, url: str, revision: str, creds: GitCredentials, timeout: float, protocols: Sequence[str]) -> str:
        self.calls += 1
        answer = self.answers.get(timeout=10)
        if isinstance(answer, GitError):
            raise answer
        return answer


class Wakes:
    def __init__(self) -> None:
        self.seen: queue.Queue[Any] = queue.Queue()

    def __call__(self, project: Any) -> None:
        self.seen.put(project)

    def next(self) -> Any:
        return self.seen.get(timeout=10)


@pytest.fixture(autouse=True)
def _nothing_is_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_resolver, "FRESH_SECONDS", 0.0)


def test_the_first_question_waits_for_a_wake_up_then_has_its_answer() -> None:
    remote, wakes = Remote(), Wakes()
    resolver = GitResolver(wakes, workers=1, resolve=remote)
    with pytest.raises(ResolutionPending):
        resolver.commit(PROJECT, REQUEST)
    remote.answers.put("a" * 40)
    assert wakes.next() == PROJECT
    remote.answers.put("a" * 40)  # the refresh this question starts
    assert resolver.commit(PROJECT, REQUEST) == "a" * 40
    resolver.shutdown()


def test_a_hanging_remote_never_holds_the_pass_and_only_a_changed_answer_wakes() -> None:
    remote, wakes = Remote(), Wakes()
    resolver = GitResolver(wakes, workers=1, resolve=remote)
    with pytest.raises(ResolutionPending):
        resolver.commit(PROJECT, REQUEST)
    remote.answers.put("a" * 40)
    wakes.next()
    # The remote now hangs: the pass still gets the last answer at once, and starts one call only.
    assert resolver.commit(PROJECT, REQUEST) == "a" * 40
    assert resolver.commit(PROJECT, REQUEST) == "a" * 40
    remote.answers.put("a" * 40)  # same answer: no wake-up
    assert _answered(resolver)
    assert remote.calls == 2, "one refresh for the two passes while it ran"
    assert wakes.seen.empty()
    resolver.commit(PROJECT, REQUEST)
    remote.answers.put("b" * 40)  # a new commit: the project is woken
    assert wakes.next() == PROJECT
    remote.answers.put("b" * 40)
    assert resolver.commit(PROJECT, REQUEST) == "b" * 40
    resolver.shutdown()


def test_a_git_error_is_the_answer_and_its_end_wakes_the_project() -> None:
    remote, wakes = Remote(), Wakes()
    resolver = GitResolver(wakes, workers=1, resolve=remote)
    with pytest.raises(ResolutionPending):
        resolver.commit(PROJECT, REQUEST)
    remote.answers.put(GitError("GitUnreachable", "cannot reach https://git.example/repo.git"))
    wakes.next()
    with pytest.raises(GitError) as error:
        resolver.commit(PROJECT, REQUEST)
    assert error.value.reason == "GitUnreachable"
    remote.answers.put("c" * 40)  # the server is back
    assert wakes.next() == PROJECT
    remote.answers.put("c" * 40)
    assert resolver.commit(PROJECT, REQUEST) == "c" * 40
    resolver.shutdown()


def test_a_forgotten_project_is_not_woken_by_a_late_answer() -> None:
    remote, wakes = Remote(), Wakes()
    resolver = GitResolver(wakes, workers=1, resolve=remote)
    with pytest.raises(ResolutionPending):
        resolver.commit(PROJECT, REQUEST)
    resolver.forget(PROJECT)
    remote.answers.put("a" * 40)
    assert _answered(resolver)
    assert wakes.seen.empty()
    resolver.shutdown()


def test_a_refresh_asks_the_remote_again_with_the_last_request_and_wakes_on_a_new_commit() -> None:
    remote, wakes = Remote(), Wakes()
    resolver = GitResolver(wakes, workers=1, resolve=remote)
    resolver.refresh(PROJECT)  # never asked: nothing to ask again
    assert _answered(resolver) and remote.calls == 0
    with pytest.raises(ResolutionPending):
        resolver.commit(PROJECT, REQUEST)
    remote.answers.put("a" * 40)
    wakes.next()
    resolver.refresh(PROJECT)
    remote.answers.put("b" * 40)  # the branch moved: the resync's question wakes the project
    assert wakes.next() == PROJECT
    assert remote.calls == 2
    remote.answers.put("b" * 40)
    assert resolver.commit(PROJECT, REQUEST) == "b" * 40
    resolver.shutdown()


def _answered(resolver: GitResolver) -> bool:
    """Every call started so far has finished (the pool is drained by a marker task)."""
    done = threading.Event()
    resolver._pool.submit(done.set)
    return done.wait(10)
