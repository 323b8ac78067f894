"""Credentials for git commands, passed through ``GIT_ASKPASS`` so they never appear in argv or on disk.

Shared by the operator (``git ls-remote`` to resolve a revision) and the runner
(the checkout), which must treat secrets the same way.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TOKEN_USERNAME = "x-access-token"
"""User name sent with a token when none is given (GitHub's convention; GitLab and Gitea accept any)."""

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$FEAST_LINEAGE_ASKPASS_USERNAME" ;;
  *) printf '%s\\n' "$FEAST_LINEAGE_ASKPASS_PASSWORD" ;;
esac
"""
DEFAULT_PROTOCOLS = ("git", "https", "ssh")


@dataclass(frozen=True)
class GitTrust:
    """Files that tell git whom to trust and how to prove who it is (all optional)."""

    ca_bundle: Path | None = None
    """PEM CAs for https (GIT_SSL_CAINFO)."""
    known_hosts: Path | None = None
    """The only host keys ssh accepts."""
    ssh_key: Path | None = None
    """Private key for ssh."""

    @classmethod
    def write(cls, directory: Path, ca_bundle: str | None, known_hosts: str | None, ssh_key: str | None) -> GitTrust:
        """The files for contents read from ConfigMaps and Secrets (the operator's side)."""
        directory.mkdir(parents=True, exist_ok=True)

        def put(name: str, content: str | None) -> Path | None:
            if content is None:
                return None
            path = directory / name
            path.touch(mode=0o600)
            path.write_text(content if content.endswith("\n") else content + "\n")
            return path

        return cls(put("ca.crt", ca_bundle), put("known_hosts", known_hosts), put("ssh-privatekey", ssh_key))


def git_env(
    base: Mapping[str, str],
    helper_dir: Path,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    trust: GitTrust | None = None,
) -> dict[str, str]:
    """Environment for a non-interactive git process; the askpass helper is written to ``helper_dir``.

    ``GIT_ALLOW_PROTOCOL`` holds git to the protocols an administrator allowed, redirects and
    submodules included: ``file`` would let a repo URL read the operator's own filesystem."""
    env = dict(base)
    env["GIT_ALLOW_PROTOCOL"] = ":".join(sorted(protocols))
    env["GIT_TERMINAL_PROMPT"] = "0"
    trust = trust or GitTrust()
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if trust.known_hosts:
        ssh += ["-o", f"UserKnownHostsFile={trust.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if trust.ssh_key:
        ssh += ["-i", str(trust.ssh_key), "-o", "IdentitiesOnly=yes"]
    env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(part) for part in ssh)
    # A remote that answers with a redirect must not get git to send the credentials to another
    # host (git follows the first redirect by default and answers its 401 with the same askpass).
    _add_config(env, "http.followRedirects", "false")
    if trust.ca_bundle:
        env["GIT_SSL_CAINFO"] = str(trust.ca_bundle)
    secret = token or password
    if secret:
        helper_dir.mkdir(parents=True, exist_ok=True)
        askpass = helper_dir / "askpass.sh"
        askpass.write_text(_ASKPASS)
        askpass.chmod(stat.S_IRWXU)
        env["GIT_ASKPASS"] = str(askpass)
        env["FEAST_LINEAGE_ASKPASS_USERNAME"] = username or TOKEN_USERNAME
        env["FEAST_LINEAGE_ASKPASS_PASSWORD"] = secret
    return env


def _add_config(env: dict[str, str], key: str, value: str) -> None:
    """One more ``git -c key=value`` through the environment, after any the caller's environment has."""
    index = int(env.get("GIT_CONFIG_COUNT", "0"))
    env[f"GIT_CONFIG_KEY_{index}"] = key
    env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(index + 1)
