"""Build etcd, kube-apiserver, kube-controller-manager and helm from Go modules.

No release binaries can be downloaded where this runs, but the Go module proxy
can be reached. ``k8s.io/kubernetes`` cannot be ``go install``-ed directly (its
go.mod pins every staging module to v0.0.0 with a local replace), so each is
built from a small wrapper module that replaces the staging modules with their
published v0.X.Y twins. Binaries are cached by version outside the repository
and rebuilt only when missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The one place the component versions are pinned.
KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"

_WRAPPER_MODULE = "feastlineage.dev/build"


class BuildError(RuntimeError):
    """A component could not be built; the message carries the tail of the log."""


def cache_root() -> Path:
    """Where built binaries live: ``$FEAST_LINEAGE_CACHE`` or ``~/.cache/feast-lineage``."""
    override = os.environ.get("FEAST_LINEAGE_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "feast-lineage"


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    helm: Path


def binaries_dir(name: str, version: str) -> Path:
    return cache_root() / "bin" / f"{name}-{version}"


def ensure_binaries(log: bool = True) -> Binaries:
    """Return the cached binaries, building whichever are missing."""
    k8s_dir = binaries_dir("kubernetes", KUBERNETES_VERSION)
    etcd_dir = binaries_dir("etcd", ETCD_VERSION)
    helm_dir = binaries_dir("helm", HELM_VERSION)
    wanted = Binaries(
        etcd=etcd_dir / "etcd",
        kube_apiserver=k8s_dir / "kube-apiserver",
        kube_controller_manager=k8s_dir / "kube-controller-manager",
        kubectl=k8s_dir / "kubectl",
        helm=helm_dir / "helm",
    )
    if not wanted.etcd.exists():
        _timed(log, f"etcd {ETCD_VERSION}", "etcd", lambda work: _build_etcd(etcd_dir, work))
    k8s_missing = [
        path.name
        for path in (wanted.kube_apiserver, wanted.kube_controller_manager, wanted.kubectl)
        if not path.exists()
    ]
    if k8s_missing:
        _timed(
            log,
            f"{', '.join(k8s_missing)} {KUBERNETES_VERSION}",
            "kubernetes",
            lambda work: _build_kubernetes(k8s_dir, k8s_missing, work),
        )
    if not wanted.helm.exists():
        _timed(log, f"helm {HELM_VERSION}", "helm", lambda work: _build_helm(helm_dir, work))
    return wanted


PROGRESS_SECONDS = 20.0
"""How often a build in progress says how far it got."""
_PACKAGE_LINE = re.compile(r"^[A-Za-z0-9._~+-]+(/[A-Za-z0-9._~+-]+)*$")


def build_progress(log_text: str) -> str:
    """How far a build got, from its log: ``go get`` lists each module it downloads, and
    ``go build -v`` each package it compiles."""
    downloaded = compiled = 0
    for line in log_text.splitlines():
        if line.startswith("go: downloading "):
            downloaded += 1
        elif _PACKAGE_LINE.match(line):
            compiled += 1
    if compiled:
        return f"{compiled} packages compiled"
    if downloaded:
        return f"{downloaded} modules downloaded"
    return "resolving modules"


@contextmanager
def _reporting(what: str, log_path: Path, started: float, interval: float) -> Iterator[None]:
    """Prints how far the build got every ``interval`` seconds, so a first build is never silent."""
    done = threading.Event()

    def report() -> None:
        while not done.wait(interval):
            try:
                so_far = build_progress(log_path.read_text(errors="replace"))
            except OSError:
                so_far = "starting"
            print(f"  ... {what}: {time.monotonic() - started:.0f}s, {so_far}", flush=True)

    thread = threading.Thread(target=report, name="build-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1)


def _timed(log: bool, what: str, name: str, build: Callable[[Path], None]) -> None:
    work = _fresh_work_dir(name)
    started = time.monotonic()
    if not log:
        build(work)
        return
    print(
        f"building {what} from Go modules: minutes the first time, cached afterwards (log {work / 'build.log'})",
        flush=True,
    )
    with _reporting(what, work / "build.log", started, PROGRESS_SECONDS):
        build(work)
    print(f"built {what} in {time.monotonic() - started:.0f}s", flush=True)


def _go_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOWORK": "off"})
    env.update(extra)
    return env


def _run_go(args: list[str], cwd: Path, log_path: Path, **extra_env: str) -> None:
    with log_path.open("ab") as log_file:
        log_file.write(f"$ go {' '.join(args)}\n".encode())
        log_file.flush()
        result = subprocess.run(
            ["go", *args], cwd=cwd, env=_go_env(**extra_env), stdout=log_file, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"go {args[0]} failed in {cwd} (log {log_path}):\n{tail}")


def _module_gomod(module: str, version: str, work: Path, log_path: Path) -> str:
    """Download a module's go.mod and return its text."""
    with log_path.open("ab") as log_file:
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=work,
            env=_go_env(),
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    info = json.loads(out.stdout or b"{}")
    if out.returncode != 0 or "GoMod" not in info:
        raise BuildError(f"cannot download {module}@{version}: {info.get('Error', 'see ' + str(log_path))}")
    return Path(info["GoMod"]).read_text()


def _godebug_lines(gomod: str) -> list[str]:
    return [line for line in gomod.splitlines() if line.startswith("godebug ")]


def _go_directive(gomod: str) -> str:
    match = re.search(r"^go (\S+)$", gomod, re.MULTILINE)
    return match.group(1) if match else "1.26.0"


def staging_replacements(gomod: str, staging_version: str) -> dict[str, str]:
    """Map each ``replace X => ./staging/...`` module to its published version."""
    found = re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./staging/", gomod, re.MULTILINE)
    return {module: staging_version for module in found}


def wrapper_gomod(requires: dict[str, str], replaces: dict[str, str], go: str, godebug: list[str]) -> str:
    lines = [f"module {_WRAPPER_MODULE}", "", f"go {go}", ""]
    lines += [*godebug, ""] if godebug else []
    lines += ["require ("] + [f"\t{m} {v}" for m, v in sorted(requires.items())] + [")", ""]
    if replaces:
        lines += ["replace ("] + [f"\t{m} => {m} {v}" for m, v in sorted(replaces.items())]
        lines += [")", ""]
    return "\n".join(lines)


def _fresh_work_dir(name: str) -> Path:
    root = cache_root() / "build"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))


def _install(built: Path, target_dir: Path) -> None:
    """Move each finished binary into place atomically, so a half build is never used."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for binary in built.iterdir():
        staging = target_dir / f".{binary.name}.tmp"
        shutil.copy2(binary, staging)
        os.replace(staging, target_dir / binary.name)


def _build_kubernetes(target_dir: Path, names: list[str], work: Path) -> None:
    log_path = work / "build.log"
    upstream = _module_gomod("k8s.io/kubernetes", KUBERNETES_VERSION, work, log_path)
    minor = KUBERNETES_VERSION.lstrip("v").split(".")[1]
    staging_version = "v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1]
    (work / "go.mod").write_text(
        wrapper_gomod(
            {"k8s.io/kubernetes": KUBERNETES_VERSION},
            staging_replacements(upstream, staging_version),
            _go_directive(upstream),
            _godebug_lines(upstream),
        )
    )
    commands = [f"k8s.io/kubernetes/cmd/{name}" for name in names]
    # Pin the version on the command line: a bare `go get` would move to the newest release.
    _run_go(["get", *(f"{c}@{KUBERNETES_VERSION}" for c in commands)], work, log_path)
    stamps = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamps += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    out = work / "out"
    out.mkdir()
    ldflags = "-s -w " + " ".join(stamps)
    # -v names each package as it is compiled: the progress reports count them.
    _run_go(["build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(out) + "/", *commands], work, log_path)
    _install(out, target_dir)
    shutil.rmtree(work, ignore_errors=True)


def _build_etcd(target_dir: Path, work: Path) -> None:
    log_path = work / "build.log"
    upstream = _module_gomod("go.etcd.io/etcd/server/v3", ETCD_VERSION, work, log_path)
    (work / "go.mod").write_text(
        wrapper_gomod({"go.etcd.io/etcd/server/v3": ETCD_VERSION}, {}, _go_directive(upstream), [])
    )
    _run_go(["get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], work, log_path)
    out = work / "out"
    out.mkdir()
    _run_go(
        ["build", "-v", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"],
        work,
        log_path,
    )
    _install(out, target_dir)
    shutil.rmtree(work, ignore_errors=True)


def _build_helm(target_dir: Path, work: Path) -> None:
    log_path = work / "build.log"
    out = work / "out"
    out.mkdir()
    _run_go(
        ["install", "-v", "-trimpath", "-ldflags", "-s -w", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
        work,
        log_path,
        GOBIN=str(out),
    )
    _install(out, target_dir)
    shutil.rmtree(work, ignore_errors=True)
