"""The user an isolated pod's container runs as, from its security context, and the files it gets.

Kubelet semantics: the container's ``securityContext`` overrides the pod's;
``runAsGroup`` defaults to 0 (an image's usual primary group); ``fsGroup`` and
``supplementalGroups`` are supplementary groups. ``runAsNonRoot`` without a
non-root ``runAsUser`` is refused (``CreateContainerConfigError``), since the
node's "image" user is root. The volumes the node writes (emptyDir, ConfigMap,
Secret, projected, downward API) are handed to that user, with ``fsGroup`` as
their group, as kubelet does for a service-account token and an ``fsGroup``; a
claim's directory gets ``fsGroup`` as its group. hostPath volumes are left as
they are, as kubelet leaves them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ContainerUser:
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    fs_group: int | None = None

    def as_spec(self) -> dict[str, int | list[int]]:
        return {"uid": self.uid, "gid": self.gid, "groups": self.groups}

    def give_files(self, volumes: dict[str, Path], pod: dict[str, Any], extra: list[Path]) -> None:
        group = self.fs_group if self.fs_group is not None else self.gid
        for volume in pod["spec"].get("volumes", []):
            path = volumes.get(volume["name"])
            if path is None or "hostPath" in volume:
                continue
            if "persistentVolumeClaim" in volume:
                if self.fs_group is not None:
                    os.chown(path, -1, self.fs_group)
                continue
            for item in [path, *path.rglob("*")]:
                os.chown(item, self.uid, group, follow_symlinks=False)
        for path in extra:
            os.chown(path, self.uid, group)


def container_user(pod: dict[str, Any], container: dict[str, Any]) -> ContainerUser | None:
    """The user to run as, or None for root as the node itself runs; ValueError when refused."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    uid = context.get("runAsUser")
    if uid is None:
        if context.get("runAsNonRoot"):
            raise ValueError("container has runAsNonRoot and image will run as root (no runAsUser is set)")
        return None
    if context.get("runAsNonRoot") and int(uid) == 0:
        raise ValueError("container's runAsUser breaks non-root policy")
    fs_group = pod_context.get("fsGroup")
    groups = [int(g) for g in ([fs_group] if fs_group is not None else []) + pod_context.get("supplementalGroups", [])]
    return ContainerUser(int(uid), int(context.get("runAsGroup", 0)), groups, fs_group)
