"""What a first `make example` says while it waits: build progress, and a failed start's cause."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feast_lineage import cli
from feast_lineage.devcluster import binaries, cluster
from feast_lineage.devcluster.processes import StartupError

BUILD_LOG = """$ go get k8s.io/kubernetes/cmd/kube-apiserver@v1.36.3
go: downloading k8s.io/kubernetes v1.36.3
go: downloading k8s.io/api v0.36.3
go: added k8s.io/api v0.36.3
$ go build -v -trimpath -ldflags -s -w -o out/ k8s.io/kubernetes/cmd/kube-apiserver
internal/goarch
runtime/internal/sys
k8s.io/apimachinery/pkg/util/sets
"""


def test_build_progress_counts_downloads_then_compiled_packages() -> None:
    assert binaries.build_progress("") == "resolving modules"
    assert binaries.build_progress(BUILD_LOG.split("$ go build")[0]) == "2 modules downloaded"
    assert binaries.build_progress(BUILD_LOG) == "3 packages compiled"


def test_a_build_reports_how_far_it_got_while_it_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "build.log"
    log.write_text(BUILD_LOG)
    with binaries._reporting("kube-apiserver v1.36.3", log, time.monotonic(), interval=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("  ... kube-apiserver v1.36.3: ") for line in lines)
    assert lines[-1].endswith("s, 3 packages compiled")


def test_dev_cluster_up_names_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise StartupError(f"mlflow not healthy (/health) after 90s; last lines of {tmp_path}/mlflow/mlflow.log:\nboom")

    monkeypatch.setattr(cluster, "start_dev_cluster", fail)
    args = cli.build_parser().parse_args(["dev-cluster", "up", "--dir", str(tmp_path)])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("dev-cluster up failed: mlflow not healthy") and f"{tmp_path}/mlflow/mlflow.log" in err
