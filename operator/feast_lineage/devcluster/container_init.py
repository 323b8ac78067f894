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


def _bind(source: str, target: str, read_only: bool) -> None:
    src = Path(source)
    dst = Path(target)
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.touch()
    subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    termination_log = spec["terminationLog"]
    try:
        for mount in spec["mounts"]:
            _bind(mount["source"], mount["target"], mount["readOnly"])
        working_dir = Path(spec["workingDir"])
        working_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(working_dir)
    except (OSError, subprocess.CalledProcessError) as error:
        Path(termination_log).write_text(f"container setup failed: {error}")
        sys.exit(128)
    argv: list[str] = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as error:
        Path(termination_log).write_text(f"exec {argv[0]!r}: {error.strerror}")
        sys.exit(127 if isinstance(error, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
