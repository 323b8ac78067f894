"""Git credentials travel by GIT_ASKPASS; revisions resolve with ls-remote against a real repository."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_another_host_never_gets_the_credentials(tmp_path: Path) -> None:
    """A git remote that redirects to a server asking for credentials: git stops at the redirect."""
    seen: list[str] = []

    class AskingForCredentials(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", "none"))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with _http_server(AskingForCredentials) as elsewhere:

        class Redirecting(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{elsewhere}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        with _http_server(Redirecting) as remote:
            env = git_env({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, tmp_path, token="s3cret-token")
            env["GIT_ALLOW_PROTOCOL"] = "http"
            done = subprocess.run(
                ["git", "ls-remote", f"http://127.0.0.1:{remote}/repo.git"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
    assert done.returncode != 0
    assert "302" in done.stderr
    assert seen == []


def test_the_redirect_setting_keeps_configs_the_environment_already_has(tmp_path: Path) -> None:
    env = git_env({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.a", "GIT_CONFIG_VALUE_0": "b"}, tmp_path)
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == (
        "2",
        "http.followRedirects",
        "false",
    )


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
