"""Resolve a Git revision to a commit with ``git ls-remote``: bounded in time and output, no credentials in argv."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO

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


MAX_OUTPUT_BYTES = 1024 * 1024
"""ls-remote of a few patterns prints a few lines; a server that advertises without end is cut off."""


class _OutputTooLarge(Exception):
    pass


def _run_bounded(args: list[str], env: dict[str, str], timeout: float, limit: int) -> subprocess.CompletedProcess[str]:
    """``args`` run to completion within ``timeout`` seconds (then killed), reading at most ``limit`` bytes
    of each output stream (beyond it, killed): a hostile remote bounds neither time nor memory here."""
    # A group of its own: git runs helpers (git-remote-https, ssh) that must end with it.
    with subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    ) as process:

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        outputs: dict[str, bytes] = {}
        too_large = threading.Event()

        def drain(name: str, stream: IO[bytes]) -> None:
            assert isinstance(stream, io.BufferedReader)
            data = bytearray()
            while piece := stream.read1(65536):
                if len(data) + len(piece) > limit:
                    too_large.set()
                    kill()
                    break
                data += piece
            outputs[name] = bytes(data)

        readers = [
            threading.Thread(target=drain, args=(name, stream), daemon=True)
            for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
            if stream is not None
        ]
        for reader in readers:
            reader.start()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill()
            raise
        finally:
            for reader in readers:
                reader.join(5)
        if too_large.is_set():
            raise _OutputTooLarge(f"the remote's answer exceeds {limit} bytes")
        return subprocess.CompletedProcess(
            args,
            process.returncode,
            outputs.get("stdout", b"").decode(errors="replace"),
            outputs.get("stderr", b"").decode(errors="replace"),
        )


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
            result = _run_bounded(["git", "ls-remote", "--", url, *patterns], env, timeout, MAX_OUTPUT_BYTES)
        except subprocess.TimeoutExpired as error:
            raise GitError("GitUnreachable", f"git ls-remote {redact(url)} timed out after {timeout:.0f}s") from error
        except _OutputTooLarge as error:
            raise GitError("GitUnreachable", f"git ls-remote {redact(url)}: {error}") from None
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
