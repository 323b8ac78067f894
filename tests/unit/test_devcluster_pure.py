"""Pure parts of the local environment: the wrapper go.mod, $(VAR) expansion, process start-up failures."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from feast_lineage.devcluster import binaries
from feast_lineage.devcluster.pod_files import expand
from feast_lineage.devcluster.processes import ManagedProcess, StartupError

UPSTREAM_GOMOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tk8s.io/api v0.0.0
\tgithub.com/spf13/cobra v1.10.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
"""


def test_staging_modules_are_replaced_by_their_published_twins() -> None:
    replaced = binaries.staging_replacements(UPSTREAM_GOMOD, "v0.36.3")
    assert replaced == {"k8s.io/api": "v0.36.3", "k8s.io/client-go": "v0.36.3", "k8s.io/kms": "v0.36.3"}


def test_wrapper_gomod_keeps_go_and_godebug_lines_of_upstream() -> None:
    text = binaries.wrapper_gomod(
        {"k8s.io/kubernetes": "v1.36.3"},
        {"k8s.io/api": "v0.36.3"},
        binaries._go_directive(UPSTREAM_GOMOD),
        binaries._godebug_lines(UPSTREAM_GOMOD),
    )
    assert "go 1.26.0\n" in text
    assert "godebug default=go1.26\n" in text
    assert "\tk8s.io/kubernetes v1.36.3\n" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in text


def test_a_failing_go_command_reports_the_tail_of_its_log(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.test/broken\n\ngo 1.22\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() { undefinedThing() }\n")
    with pytest.raises(binaries.BuildError) as raised:
        binaries._run_go(["build", "."], tmp_path, tmp_path / "build.log")
    assert "undefined: undefinedThing" in str(raised.value)


def test_kubernetes_var_expansion() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(MISSING)", env) == "$(MISSING)"


def test_component_that_cannot_bind_its_port_fails_fast_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = ManagedProcess(
            "http-server",
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            tmp_path / "server.log",
        )
        started = time.monotonic()
        with pytest.raises(StartupError) as raised:
            server.wait_ready(lambda: False, timeout=60, what="listening")
    assert time.monotonic() - started < 30
    assert "exited with code" in str(raised.value)
    assert "Address already in use" in str(raised.value)


def test_component_that_never_gets_ready_times_out_with_its_log(tmp_path: Path) -> None:
    sleeper = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "print('still starting', flush=True); import time; time.sleep(60)"],
        tmp_path / "sleeper.log",
    )
    try:
        with pytest.raises(StartupError) as raised:
            sleeper.wait_ready(lambda: False, timeout=2, what="ready")
        assert "not ready after 2s" in str(raised.value)
        assert "still starting" in str(raised.value)
    finally:
        sleeper.stop(grace=1)
    assert not sleeper.alive()
