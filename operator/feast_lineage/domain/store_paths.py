"""Store paths that would not outlive the runner pod.

A runner pod's filesystem is a throwaway workspace: a file registry or a sqlite online
store written there is gone when the apply ends, and the next materialization fails with
"no such table". Feast itself applies such a project happily, so the operator refuses it
before the first apply, naming the path and the fix.
"""

from __future__ import annotations

from feast_lineage.api import FeatureStoreProjectSpec

FEAST_DEFAULT_SQLITE_PATH = "data/online_store.db"


def _remote(path: str) -> bool:
    return "://" in path


def _on_volume(path: str, mount_paths: list[str]) -> bool:
    if not path.startswith("/"):
        return False
    return any(path == mount or path.startswith(mount.rstrip("/") + "/") for mount in mount_paths)


def ephemeral_store_paths(spec: FeatureStoreProjectSpec) -> list[str]:
    """One message per store whose files would live only inside the runner pod."""
    mounts = [str(m.get("mountPath", "")) for m in spec.runner.volume_mounts if m.get("mountPath")]
    fix = "put it on a volume of spec.runner.volumeMounts (e.g. a PersistentVolumeClaim) or use a networked store"
    problems: list[str] = []
    registry = spec.feature_store.registry
    local_file = registry.registry_type == "file" and "$" not in registry.path and not _remote(registry.path)
    if local_file and not _on_volume(registry.path, mounts):
        problems.append(f"registry path {registry.path} is not on a mounted volume: {fix}")
    online = spec.feature_store.online_store
    if online is None:
        if spec.feature_store.provider == "local":
            problems.append(
                "onlineStore is not set: Feast's default is a sqlite file in the runner's throwaway workspace; "
                "set onlineStore (type sqlite with settings.path on a mounted volume, or a networked store)"
            )
    elif online.type == "sqlite":
        path = str(online.settings.get("path", FEAST_DEFAULT_SQLITE_PATH))
        if "$" not in path and not _on_volume(path, mounts):
            problems.append(f"onlineStore sqlite path {path} is not on a mounted volume: {fix}")
    return problems
