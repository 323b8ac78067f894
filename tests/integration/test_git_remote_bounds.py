"""git ls-remote ends by its deadline and reads a bounded answer, whatever the remote does."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from feast_lineage.controller.git_remote import GitCredentials, GitError, _OutputTooLarge, _run_bounded, resolve_commit
from tests.hostile_servers import serving, trickle_body, trickle_headers


@pytest.mark.parametrize("behaviour", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_trickling_git_remote_is_given_up_by_the_deadline(behaviour: object) -> None:
    with serving(behaviour) as served:  # type: ignore[arg-type]
        began = time.monotonic()
        with pytest.raises(GitError, match="timed out after 3s"):
            resolve_commit(f"{served.url}/repo.git", "main", GitCredentials(), timeout=3, protocols=("http",))
        elapsed = time.monotonic() - began
    print(f"trickling git remote: given up after {elapsed:.2f}s (deadline 3s)")
    assert 3 <= elapsed < 6


def test_endless_output_is_cut_at_the_cap() -> None:
    began = time.monotonic()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with pytest.raises(_OutputTooLarge):
        _run_bounded(["yes", "0123456789abcdef0123456789abcdef01234567\trefs/heads/main"], env, 30, 1024 * 1024)
    assert time.monotonic() - began < 10


def test_a_silent_command_is_killed_at_the_deadline() -> None:
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        _run_bounded(["sleep", "60"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, 1, 1024)
    assert time.monotonic() - began < 5
