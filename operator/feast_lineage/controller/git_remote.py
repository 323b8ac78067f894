"""Resolve a Git revision to a commit with ``git ls-remote``, bounded in time, credentials kept out of argv."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from feast_lineage.domain.tenancy import check_revision, git_protocol, is_full_commit
from feast_lineage.git_credentials import DEFAULT_PROTOCOLS, GitTrust, git_env
from feast_lineage.redaction import redact


class GitError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # GitUnreachable | GitRevisionNotFound
        self.message = message


@dataclass(frozen=True)
class GitCredentials:
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    """PEM CAs for https, from repo.git.caBundleRef."""
    known_hosts: str | None = None
    """From repo.git.knownHostsRef."""


@cache
def _helper_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="feast-lineage-git-"))


def _pick(lines: list[str], revision: str) -> str | None:
    refs = {}
    for line in lines:
        sha, _, ref = line.partition("\t")
        refs[ref] = sha
    for ref in (f"refs/tags/{revision}^{{}}", f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
        if ref in refs:
            return refs[ref]
    return None


def resolve_commit(
    url: str,
    revision: str,
    credentials: GitCredentials,
    timeout: float,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
) -> str:
    """The commit ``revision`` (branch, tag, HEAD or full SHA) points to at ``url`` now."""
    protocol = git_protocol(url)
    if protocol not in protocols:
        raise GitError("NotAllowed", f"Git protocol {protocol or '(none)'} is not allowed by the operator's settings")
    problem = check_revision(revision)
    if problem is not None:
        raise GitError("InvalidSpec", problem)
    if is_full_commit(revision):
        return revision
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    secrets = [value for value in (credentials.password, credentials.token) if value]
    patterns = [revision, f"refs/heads/{revision}", f"refs/tags/{revision}", f"refs/tags/{revision}^{{}}"]
    # Trust files of this call only: reconciles of other projects run at the same time.
    with tempfile.TemporaryDirectory(prefix="feast-lineage-git-trust-") as scratch:
        trust = GitTrust.write(Path(scratch), credentials.ca_bundle, credentials.known_hosts, credentials.ssh_key)
        env = git_env(
            base,
            _helper_dir(),
            credentials.username,
            credentials.password,
            credentials.token,
            protocols=protocols,
            trust=trust,
        )
        try:
            result = subprocess.run(
                ["git", "ls-remote", "--", url, *patterns],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as error:
            raise GitError("GitUnreachable", f"git ls-remote {redact(url)} timed out after {timeout:.0f}s") from error
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        detail = (fatal or lines or [f"exit code {result.returncode}"])[0]
        raise GitError("GitUnreachable", f"cannot reach {redact(url)}: {redact(detail, secrets)}")
    commit = _pick(result.stdout.strip().splitlines(), revision)
    if commit is None:
        raise GitError("GitRevisionNotFound", f"revision {revision!r} not found in {redact(url)}")
    if not is_full_commit(commit):
        # It names the checkout the runner does: never pass on anything but an object name.
        raise GitError("GitUnreachable", f"{redact(url)} answered with an invalid object name for {revision!r}")
    return commit
