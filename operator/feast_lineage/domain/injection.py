"""Decide what the admission webhook injects into a pod that asks for a project's client configuration.

Pure: the webhook (at admission) and the operator (finding pods that missed it) ask the
same question of the same function. The answer is a JSON patch that only adds: env
variables the container does not set, read-only volumes, and annotations recording what
was injected. Nothing here calls MLflow or the API server, so admission never waits on them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from feast_lineage import contract
from feast_lineage.api import FeatureStoreProjectSpec
from feast_lineage.domain import labels
from feast_lineage.domain.runner_job import mlflow_credentials_env
from feast_lineage.domain.store_config import CLIENT_YAML, CLIENT_YAML_NO_AUTOLOG, SECRET_ENV_PREFIX

RESERVED_ENV_PREFIX = "FEAST_LINEAGE_"
"""Environment names the webhook owns in injected pods; a pod that sets one is not injected."""
RESERVED_VOLUME_PREFIX = "feast-lineage-"
CLIENT_VOLUME = "feast-lineage-client"
ENV_POD_NAME = "FEAST_LINEAGE_POD_NAME"
ENV_POD_UID = "FEAST_LINEAGE_POD_UID"
FS_YAML_ENV = "FEAST_FS_YAML_FILE_PATH"
"""Read by the Feast CLI; training code passes it to FeatureStore(fs_yaml_file=...)."""
RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"
"""MLflow applies this JSON object as tags to every run the process starts."""
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"

ROLES = ("training", "serving", "batch")

POD_SECURITY_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
# Volume types the restricted Pod Security level admits; baseline admits all but hostPath.
_RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)


@dataclass(frozen=True)
class InjectionTarget:
    """What the webhook knows of one FeatureStoreProject (kept in memory, fed by the watch)."""

    namespace: str
    name: str
    spec: FeatureStoreProjectSpec | None
    """None when the stored spec does not validate; ``problem`` says why."""
    problem: str | None = None
    client_config_map: str = ""
    revision: str | None = None
    """Repo revision of the last successful apply."""
    commit: str | None = None
    apply_run_id: str | None = None
    """MLflow run of the last apply."""
    recorded_missed: int = 0
    """status.injection.missedPods as last written, so a restarted operator can correct it."""


@dataclass(frozen=True)
class InjectionDecision:
    project: str | None
    patch: list[dict[str, Any]] = field(default_factory=list)
    """JSON patch operations; empty when nothing is injected."""
    injected_hash: str | None = None
    skipped: str | None = None
    """Why nothing was injected, when so: shown as an admission warning and an Event."""
    warnings: list[str] = field(default_factory=list)
    """Caveats of an injection that happened (e.g. a volume the namespace forbids was left out)."""
    already_injected: bool = False


def select_target(label_value: str, targets: Sequence[InjectionTarget], namespace: str) -> InjectionTarget | str:
    """The project a pod's label names, or why there is none. Only projects of the pod's namespace count."""
    local = [t for t in targets if t.namespace == namespace]
    if label_value == "true":
        defaults = sorted(
            (t for t in local if t.spec is not None and t.spec.injection.namespace_default), key=lambda t: t.name
        )
        if not defaults:
            return f"no FeatureStoreProject in namespace {namespace} sets injection.namespaceDefault"
        if len(defaults) > 1:
            names = ", ".join(t.name for t in defaults)
            return f"several FeatureStoreProjects in namespace {namespace} set injection.namespaceDefault: {names}"
        return defaults[0]
    for target in local:
        if target.name == label_value:
            return target
    return f'no FeatureStoreProject "{label_value}" in namespace {namespace}'


def decide_injection(
    pod: Mapping[str, Any],
    namespace: str,
    targets: Sequence[InjectionTarget],
    *,
    pod_security_level: str | None = None,
    default_tracking_uri: str | None = None,
) -> InjectionDecision:
    """What to inject into ``pod`` (created in ``namespace``, as the admission request says)."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    label_value = str((meta.get("labels") or {}).get(labels.LABEL_INJECT, ""))
    if annotations.get(labels.ANNOTATION_INJECTED):
        # Idempotent: a reinvocation, or a pod created from an injected template, is left as it is.
        return InjectionDecision(annotations.get(labels.ANNOTATION_INJECTED_PROJECT), already_injected=True)
    selected = select_target(label_value, targets, namespace)
    if isinstance(selected, str):
        return InjectionDecision(None, skipped=selected)
    target = selected
    if target.spec is None:
        return InjectionDecision(target.name, skipped=f"FeatureStoreProject {target.name} is invalid: {target.problem}")
    spec = target.spec
    if not spec.injection.enabled:
        return InjectionDecision(target.name, skipped=f"injection is disabled in FeatureStoreProject {target.name}")
    pod_spec = pod.get("spec") or {}
    groups = ["containers"]
    if str(annotations.get(labels.ANNOTATION_INJECT_INIT_CONTAINERS, "")).lower() == "true":
        groups.append("initContainers")
    conflict = _reserved_name_conflict(pod_spec, groups)
    if conflict is not None:
        return InjectionDecision(target.name, skipped=conflict)

    warnings: list[str] = []
    role = str(annotations.get(labels.ANNOTATION_ROLE, "training"))
    if role not in ROLES:
        warnings.append(f'unknown {labels.ANNOTATION_ROLE} "{role}": using training')
        role = "training"
    volumes, mounts = _shared_volumes(spec, pod_security_level, warnings)
    mount_path = spec.injection.mount_path.rstrip("/") or "/"
    yaml_key = CLIENT_YAML if role == "training" else CLIENT_YAML_NO_AUTOLOG
    volumes.insert(
        0,
        {"name": CLIENT_VOLUME, "configMap": {"name": target.client_config_map, "items": _client_items()}},
    )
    mounts.insert(0, {"name": CLIENT_VOLUME, "mountPath": mount_path, "readOnly": True})
    if spec.feature_store.registry.registry_type == "file" and not spec.feature_store.registry.path.startswith("/"):
        warnings.append(
            f"registry path {spec.feature_store.registry.path!r} is relative: it resolves against each "
            "pod's working directory; use an absolute path on a shared volume or a remote registry"
        )

    patch: list[dict[str, Any]] = []
    injected: dict[str, Any] = {"volumes": volumes, "containers": {}}
    for group in groups:
        for index, container in enumerate(pod_spec.get(group) or []):
            env = _container_env(spec, target, pod, namespace, container, role, default_tracking_uri)
            env.append({"name": FS_YAML_ENV, "value": f"{mount_path}/{yaml_key}".replace("//", "/")})
            added_env = _missing(container.get("env") or [], env, key="name")
            added_mounts = _mounts_for(container, mounts, warnings)
            patch += _append_ops(f"/spec/{group}/{index}/env", container.get("env"), added_env)
            patch += _append_ops(f"/spec/{group}/{index}/volumeMounts", container.get("volumeMounts"), added_mounts)
            injected["containers"][f"{group}/{container.get('name')}"] = {"env": added_env, "mounts": added_mounts}
    patch += _append_ops("/spec/volumes", pod_spec.get("volumes"), volumes)
    digest = hashlib.sha256(json.dumps(injected, sort_keys=True).encode()).hexdigest()[:16]
    recorded = {labels.ANNOTATION_INJECTED: digest, labels.ANNOTATION_INJECTED_PROJECT: target.name}
    if warnings:
        recorded[labels.ANNOTATION_INJECTION_WARNINGS] = "; ".join(warnings)
    patch += _annotation_ops(annotations, recorded)
    return InjectionDecision(target.name, patch, digest, warnings=warnings)


def _client_items() -> list[dict[str, str]]:
    return [{"key": key, "path": key} for key in (CLIENT_YAML, CLIENT_YAML_NO_AUTOLOG)]


def _reserved_name_conflict(pod_spec: Mapping[str, Any], groups: Sequence[str]) -> str | None:
    for group in groups:
        for container in pod_spec.get(group) or []:
            for entry in container.get("env") or []:
                if str(entry.get("name", "")).startswith(RESERVED_ENV_PREFIX):
                    return (
                        f"container {container.get('name')} sets {entry['name']}: names starting with "
                        f"{RESERVED_ENV_PREFIX} are reserved for the injected configuration"
                    )
    for volume in pod_spec.get("volumes") or []:
        if str(volume.get("name", "")).startswith(RESERVED_VOLUME_PREFIX):
            return (
                f"the pod has a volume named {volume['name']}: names starting with "
                f"{RESERVED_VOLUME_PREFIX} are reserved for the injected configuration"
            )
    return None


def _escape(value: str) -> str:
    """Kubernetes expands $(VAR) in env values; a literal $( must be written $$(."""
    return value.replace("$(", "$$(")


def _run_context(
    target: InjectionTarget, pod: Mapping[str, Any], namespace: str, container: Mapping[str, Any], role: str
) -> str:
    """MLFLOW_RUN_CONTEXT: tags for every run the process starts. Pod name and UID are not known at
    admission (generateName, no UID yet): they come from the downward API through $(VAR)."""
    assert target.spec is not None
    tags: dict[str, str] = {
        "k8s.namespace": _escape(namespace),
        "k8s.pod": f"$({ENV_POD_NAME})",
        "k8s.pod_uid": f"$({ENV_POD_UID})",
        "k8s.container": _escape(str(container.get("name", ""))),
        "k8s.image": _escape(str(container.get("image", ""))),
        "featurelineage.project": _escape(target.name),
        "featurelineage.feast_project": _escape(target.spec.project),
        "featurelineage.role": role,
    }
    for reference in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller"):
            tags["k8s.owner_kind"] = _escape(str(reference.get("kind", "")))
            tags["k8s.owner_name"] = _escape(str(reference.get("name", "")))
            if reference.get("kind") == "Job":
                tags["k8s.job"] = _escape(str(reference.get("name", "")))
    if target.revision:
        tags["featurelineage.revision"] = _escape(target.revision)
    if target.commit:
        tags["git.commit"] = _escape(target.commit)
    if target.apply_run_id:
        tags["featurelineage.apply_run_id"] = _escape(target.apply_run_id)
    return json.dumps(tags, sort_keys=True)


def _container_env(
    spec: FeatureStoreProjectSpec,
    target: InjectionTarget,
    pod: Mapping[str, Any],
    namespace: str,
    container: Mapping[str, Any],
    role: str,
    default_tracking_uri: str | None,
) -> list[dict[str, Any]]:
    mlflow = spec.mlflow
    # Order matters: $(VAR) in MLFLOW_RUN_CONTEXT expands only variables defined before it.
    env: list[dict[str, Any]] = [
        {"name": ENV_POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": ENV_POD_UID, "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": RUN_CONTEXT_ENV, "value": _run_context(target, pod, namespace, container, role)},
    ]
    tracking_uri = mlflow.tracking_uri or default_tracking_uri
    if tracking_uri:
        env.append({"name": contract.MLFLOW_ENV_TRACKING_URI, "value": _escape(tracking_uri)})
    env += [
        {"name": contract.MLFLOW_ENV_TIMEOUT, "value": str(mlflow.request_timeout_seconds)},
        {"name": contract.MLFLOW_ENV_MAX_RETRIES, "value": str(mlflow.max_retries)},
    ]
    if spec.injection.experiment_name:
        env.append({"name": EXPERIMENT_ENV, "value": _escape(spec.injection.experiment_name)})
    env += mlflow_credentials_env(mlflow)
    env += [
        {
            "name": SECRET_ENV_PREFIX + entry.name,
            "valueFrom": {"secretKeyRef": {"name": entry.secret_key_ref.name, "key": entry.secret_key_ref.key}},
        }
        for entry in spec.feature_store.secret_env
    ]
    return env


def _shared_volumes(
    spec: FeatureStoreProjectSpec, pod_security_level: str | None, warnings: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The runner volumes clients share (read-only), under reserved names, less what the namespace forbids."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    by_name = {str(v.get("name")): v for v in spec.runner.volumes}
    for name in spec.injection.volumes:
        source = copy.deepcopy(by_name[name])
        kinds = [key for key in source if key != "name"]
        forbidden = _forbidden_by_pod_security(kinds, pod_security_level)
        if forbidden is not None:
            warnings.append(
                f"volume {name} ({forbidden}) not injected: the namespace enforces Pod Security "
                f'"{pod_security_level}", which forbids it'
            )
            continue
        injected_name = f"{RESERVED_VOLUME_PREFIX}{name}"[:63]
        source["name"] = injected_name
        if isinstance(source.get("persistentVolumeClaim"), dict):
            source["persistentVolumeClaim"]["readOnly"] = True
        volumes.append(source)
        for mount in spec.runner.volume_mounts:
            if mount.get("name") == name:
                mounts.append({**copy.deepcopy(mount), "name": injected_name, "readOnly": True})
    return volumes, mounts


def _forbidden_by_pod_security(kinds: Sequence[str], level: str | None) -> str | None:
    if level == "baseline" and "hostPath" in kinds:
        return "hostPath"
    if level == "restricted":
        for kind in kinds:
            if kind not in _RESTRICTED_VOLUME_TYPES:
                return kind
    return None


def _missing(existing: Sequence[Mapping[str, Any]], wanted: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """What the pod does not set itself: the pod's own values always win."""
    present = {item.get(key) for item in existing}
    return [item for item in wanted if item[key] not in present]


def _mounts_for(
    container: Mapping[str, Any], mounts: Sequence[dict[str, Any]], warnings: list[str]
) -> list[dict[str, Any]]:
    used = {m.get("mountPath") for m in container.get("volumeMounts") or []}
    added = []
    for mount in mounts:
        if mount["mountPath"] in used:
            warnings.append(f"container {container.get('name')} already mounts something at {mount['mountPath']}: kept")
            continue
        added.append(mount)
    return added


def _append_ops(path: str, current: Sequence[Any] | None, items: Sequence[Any]) -> list[dict[str, Any]]:
    if not items:
        return []
    if not current:
        return [{"op": "add", "path": path, "value": list(items)}]
    return [{"op": "add", "path": f"{path}/-", "value": item} for item in items]


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _annotation_ops(current: Mapping[str, Any], added: Mapping[str, str]) -> list[dict[str, Any]]:
    if not current:
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(added)}]
    return [{"op": "add", "path": f"/metadata/annotations/{_pointer(k)}", "value": v} for k, v in added.items()]
