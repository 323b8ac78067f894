"""Runs inside a fresh mount namespace: bind the pod's volumes at their mount paths, then exec.

Started by the local node as ``unshare --mount --propagation private -- python -m
feast_lineage.devcluster.container_init SPEC.json``, so every container sees its
ConfigMaps, Secrets and service-account token at the paths its pod spec names,
while the host and the other containers do not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _bind(source_fd: int, is_dir: bool, target: str, read_only: bool) -> None:
    dst = Path(target)
    if is_dir:
        # Mount points are made on the host; an empty file left by an earlier pod is replaced.
        if dst.is_file() and dst.stat().st_size == 0:
            dst.unlink()
        dst.mkdir(parents=True, exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.touch()
    # Bind from a descriptor opened before any mount: an earlier mount (say, on /tmp) may
    # already hide the path the source was reached by.
    source = f"/proc/{os.getpid()}/fd/{source_fd}"
    subprocess.run(["mount", "--bind", source, str(dst)], check=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True)


def _fail(termination_fd: int, code: int, message: str) -> None:
    os.write(termination_fd, message.encode())
    sys.exit(code)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    termination_fd = os.open(spec["terminationLog"], os.O_WRONLY | os.O_TRUNC)
    try:
        sources = [
            (os.open(m["source"], os.O_PATH), Path(m["source"]).is_dir(), m["target"], m["readOnly"])
            for m in spec["mounts"]
        ]
        for source_fd, is_dir, target, read_only in sources:
            _bind(source_fd, is_dir, target, read_only)
        for source_fd, *_ in sources:
            os.close(source_fd)
        working_dir = Path(spec["workingDir"])
        working_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(working_dir)
    except (OSError, subprocess.CalledProcessError) as error:
        _fail(termination_fd, 128, f"container setup failed: {error}")
    os.close(termination_fd)
    argv: list[str] = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as error:
        # The termination log is mounted at its container path by now.
        fd = os.open(spec["terminationLogInContainer"], os.O_WRONLY | os.O_TRUNC)
        _fail(fd, 127 if isinstance(error, FileNotFoundError) else 126, f"exec {argv[0]!r}: {error.strerror}")


if __name__ == "__main__":
    main()
