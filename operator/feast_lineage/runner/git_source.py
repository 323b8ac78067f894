"""Checking out one exact commit of a Git repository, with credentials kept out of argv and output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from feast_lineage import contract
from feast_lineage.git_credentials import GitTrust, git_env
from feast_lineage.redaction import redact
from feast_lineage.runner.errors import OperationFailed
from feast_lineage.runner.settings import GitSettings

GIT_TIMEOUT = 600.0


def checkout(git: GitSettings, destination: Path, helper_dir: Path) -> str:
    """Fetch ``git.commit`` (else the tip of ``git.revision``) into ``destination``; returns the commit SHA."""
    env = _git_env(git, helper_dir)
    secrets = [value for value in (git.password, git.token) if value]
    run = _Git(destination, env, secrets)
    destination.mkdir(parents=True, exist_ok=True)
    run("init", "-q")
    run("remote", "add", "origin", git.url)
    wanted = git.commit or git.revision or "HEAD"
    # --end-of-options: a revision is never read as an option, whatever it looks like.
    shallow = run("fetch", "-q", "--depth", "1", "--end-of-options", "origin", wanted, check=False)
    if shallow.returncode != 0:
        # Servers that refuse fetching an unadvertised SHA still serve the revision it was resolved from.
        ref = git.revision if git.commit else wanted
        full = run("fetch", "-q", "--tags", "--end-of-options", "origin", ref or "HEAD", check=False)
        if full.returncode != 0:
            raise OperationFailed(
                f"git fetch of {wanted} from {redact(git.url)} failed: {run.last_line(full, shallow)}"
            )
    target = git.commit or "FETCH_HEAD"
    if run("cat-file", "-e", f"{target}^{{commit}}", check=False).returncode != 0:
        raise OperationFailed(
            f"commit {target} is not in {git.revision or 'the fetched revision'} of {redact(git.url)}"
        )
    run("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", target)
    return run("rev-parse", "HEAD").stdout.strip()


def _git_env(git: GitSettings, helper_dir: Path) -> dict[str, str]:
    mounted = Path(contract.GIT_TRUST_MOUNT)

    def present(name: str) -> Path | None:
        return mounted / name if (mounted / name).is_file() else None

    trust = GitTrust(
        present(contract.GIT_CA_FILE), present(contract.GIT_KNOWN_HOSTS_FILE), present(contract.GIT_SSH_KEY)
    )
    env = git_env(os.environ, helper_dir, git.username, git.password, git.token, protocols=git.protocols, trust=trust)
    env.setdefault("HOME", str(helper_dir))
    # Without a user config, git would read the image's; keep the checkout reproducible.
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return env


class _Git:
    def __init__(self, directory: Path, env: Mapping[str, str], secrets: Sequence[str]) -> None:
        self.directory = directory
        self.env = dict(env)
        self.secrets = list(secrets)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=self.directory,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise OperationFailed("git is not installed in the runner image") from None
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"git {args[0]} did not finish within {GIT_TIMEOUT:g}s") from None
        if check and done.returncode != 0:
            raise OperationFailed(f"git {args[0]} failed: {self.last_line(done)}")
        return done

    def last_line(self, *results: subprocess.CompletedProcess[str]) -> str:
        for result in results:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            if lines:
                return redact(lines[-1].strip(), self.secrets)
        return f"exit code {results[0].returncode}"
