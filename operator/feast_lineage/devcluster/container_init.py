"""Runs inside a fresh mount namespace: bind the pod's volumes at their mount paths, then exec.

Started by the local node as ``unshare --mount --propagation private -- python -m
feast_lineage.devcluster.container_init SPEC.json``, so every container sees its
ConfigMaps, Secrets and service-account token at the paths its pod spec names,
while the host and the other containers do not.

For pods the node isolates, it also honours the security context: with
``readOnlyRootFilesystem`` every mount the container inherits from the host is
remounted read-only in its namespace (``/proc``, ``/sys`` and ``/dev`` aside, as a
runtime leaves them), so only its volumes stay writable; ``runAsUser`` /
``runAsGroup`` / ``fsGroup`` become its user, group and supplementary groups.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 8, 32, 4096
_KEPT_WRITABLE = ("/proc", "/sys", "/dev")
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2) itself: the mount command would resolve a /proc/PID/fd source to a path, maybe hidden by now."""
    encoded = [None if value is None else value.encode() for value in (source, target, fstype, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3]) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source or fstype} on {target}: {os.strerror(errno)}")


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
    _mount(f"/proc/self/fd/{source_fd}", str(dst), None, _MS_BIND)
    if read_only:
        _mount(None, str(dst), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)


def _mount_points() -> list[tuple[str, int]]:
    """Every filesystem mounted in this namespace, with the flags a bind remount must keep."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        target = fields[4].replace("\\040", " ")
        if fields[fields.index("-") + 1] == "nsfs":
            continue  # a namespace pinned by `ip netns`: no filesystem to write to, and it cannot be remounted
        options = fields[5].split(",")
        flags = sum(
            flag
            for name, flag in (("nosuid", _MS_NOSUID), ("nodev", _MS_NODEV), ("noexec", _MS_NOEXEC))
            if name in options
        )
        points.append((target, flags))
    return points


def _make_read_only(points: list[tuple[str, int]]) -> None:
    for target, flags in points:
        if not any(target == kept or target.startswith(kept + "/") for kept in _KEPT_WRITABLE):
            _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)


def _expose(path: str) -> None:
    """Let any user reach ``path`` though an ancestor is closed to them (the interpreter under /root, say).

    A tmpfs goes over the topmost closed ancestor in this namespace, holding only ``path``, bound
    read-only: the container sees the runtime it runs on and nothing else of that directory.
    """
    target = Path(path)
    closed = next((p for p in reversed(target.parents) if p != Path("/") and not p.stat().st_mode & 0o001), None)
    if closed is None:
        return
    source_fd = os.open(target, os.O_PATH)
    _mount("tmpfs", str(closed), "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=64k")
    target.mkdir(parents=True, exist_ok=True)
    _bind(source_fd, True, path, read_only=True)
    os.close(source_fd)


def _become(user: dict[str, int | list[int]]) -> None:
    groups = user.get("groups", [])
    os.setgroups(list(groups) if isinstance(groups, list) else [])
    os.setgid(int(str(user["gid"])))
    os.setuid(int(str(user["uid"])))


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
        inherited = _mount_points()
        for path in spec.get("exposedPaths", []):
            _expose(path)
        for source_fd, is_dir, target, read_only in sources:
            _bind(source_fd, is_dir, target, read_only)
        for source_fd, *_ in sources:
            os.close(source_fd)
        # Made after the volumes (it may lie in one) and before the root turns read-only.
        working_dir = Path(spec["workingDir"])
        working_dir.mkdir(parents=True, exist_ok=True)
        # A mount with a file open for writing cannot turn read-only: report through the mounted log.
        os.close(termination_fd)
        termination_fd = os.open(spec["terminationLogInContainer"], os.O_WRONLY | os.O_TRUNC)
        if spec.get("readOnlyRootFilesystem"):
            _make_read_only(inherited)
        os.chdir(working_dir)
        if spec.get("user"):
            _become(spec["user"])
    except OSError as error:
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
