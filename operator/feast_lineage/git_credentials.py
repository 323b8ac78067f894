"""Credentials for git commands, passed through ``GIT_ASKPASS`` so they never appear in argv or on disk.

Shared by the operator (``git ls-remote`` to resolve a revision) and the runner
(the checkout), which must treat secrets the same way.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping, Sequence
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
_USERINFO = re.compile(r"(://)[^/@\s]+@")


def git_env(
    base: Mapping[str, str],
    helper_dir: Path,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
) -> dict[str, str]:
    """Environment for a non-interactive git process; the askpass helper is written to ``helper_dir``.

    ``GIT_ALLOW_PROTOCOL`` holds git to the protocols an administrator allowed, redirects and
    submodules included: ``file`` would let a repo URL read the operator's own filesystem."""
    env = dict(base)
    env["GIT_ALLOW_PROTOCOL"] = ":".join(sorted(protocols))
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
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


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without URL user info and without any of ``secrets``."""
    text = _USERINFO.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
