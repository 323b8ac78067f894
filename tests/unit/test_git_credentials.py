"""Git credentials travel by GIT_ASKPASS; revisions resolve with ls-remote against a real repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from feast_lineage.controller.git_remote import GitCredentials, GitError, resolve_commit
from feast_lineage.git_credentials import git_env


def test_askpass_answers_user_and_secret_from_the_environment(tmp_path: Path) -> None:
    env = git_env({"PATH": "/usr/bin:/bin"}, tmp_path, token="t0ken")
    script = env["GIT_ASKPASS"]
    user = subprocess.run([script, "Username for 'https://git.example': "], env=env, capture_output=True, text=True)
    secret = subprocess.run([script, "Password for 'https://x@git.example': "], env=env, capture_output=True, text=True)
    assert (user.stdout, secret.stdout) == ("x-access-token\n", "t0ken\n")
    assert "t0ken" not in Path(script).read_text()
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_no_credentials_no_askpass(tmp_path: Path) -> None:
    assert "GIT_ASKPASS" not in git_env({}, tmp_path)


def _git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_resolve_branch_tag_annotated_tag_and_sha(tmp_path: Path) -> None:
    work = tmp_path / "work"
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    _git(work, "commit", "-q", "--allow-empty", "-m", "one")
    first = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "light")
    _git(work, "tag", "-a", "annotated", "-m", "release")
    _git(work, "commit", "-q", "--allow-empty", "-m", "two")
    second = _git(work, "rev-parse", "HEAD")
    url, none, local = f"file://{work}", GitCredentials(), ("file",)
    assert resolve_commit(url, "main", none, 10, local) == second
    assert resolve_commit(url, "light", none, 10, local) == first
    assert resolve_commit(url, "annotated", none, 10, local) == first
    assert resolve_commit(url, first, none, 10, local) == first
    with pytest.raises(GitError) as missing:
        resolve_commit(url, "nope", none, 10, local)
    assert missing.value.reason == "GitRevisionNotFound"
    with pytest.raises(GitError) as unreachable:
        resolve_commit(f"file://{tmp_path}/absent", "main", none, 10, local)
    assert unreachable.value.reason == "GitUnreachable"
    # What an administrator did not allow is refused before git runs, by default file:// included.
    with pytest.raises(GitError) as refused:
        resolve_commit(url, "main", none, 10)
    assert refused.value.reason == "NotAllowed"
    with pytest.raises(GitError) as option:
        resolve_commit(url, "--upload-pack=touch /tmp/owned", none, 10, local)
    assert option.value.reason == "InvalidSpec"
