"""Turn a pod's volumes and environment into files and variables on the local machine.

This is the part of a kubelet that reads ConfigMaps, Secrets and the TokenRequest
API. Errors are raised as :class:`PodConfigError` with the kubelet's reason
(``CreateContainerConfigError`` for env, ``FailedMount`` for volumes), so the
pod shows what a real node would show.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

Pod = dict[str, Any]


class PodConfigError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


class PodFiles:
    """Reads what one pod refers to, through the API, with a small per-pod cache."""

    def __init__(self, core: CoreV1Api, pod: Pod, pod_dir: Path, pod_ip: str) -> None:
        self.core = core
        self.pod = pod
        self.namespace: str = pod["metadata"]["namespace"]
        self.pod_dir = pod_dir
        self.pod_ip = pod_ip
        self._objects: dict[tuple[str, str], dict[str, bytes] | None] = {}

    # -- objects -------------------------------------------------------------------------------

    def _data(self, kind: str, name: str) -> dict[str, bytes] | None:
        """The decoded data of a ConfigMap or Secret, or None when it does not exist."""
        key = (kind, name)
        if key not in self._objects:
            try:
                if kind == "secret":
                    secret = self.core.read_namespaced_secret(name, self.namespace)
                    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
                else:
                    cm = self.core.read_namespaced_config_map(name, self.namespace)
                    data = {k: v.encode() for k, v in (cm.data or {}).items()}
                    data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
                self._objects[key] = data
            except ApiException as error:
                if error.status != 404:
                    raise
                self._objects[key] = None
        return self._objects[key]

    def _key(self, kind: str, ref: dict[str, Any], reason: str) -> bytes | None:
        data = self._data(kind, ref["name"])
        label = "configmap" if kind == "configMap" else kind
        if data is None:
            if ref.get("optional"):
                return None
            raise PodConfigError(reason, f'{label} "{ref["name"]}" not found')
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise PodConfigError(reason, f"couldn't find key {ref['key']} in {label} {self.namespace}/{ref['name']}")
        return data[ref["key"]]

    # -- environment ---------------------------------------------------------------------------

    def field_value(self, field_path: str) -> str:
        meta = self.pod["metadata"]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", field_path)
        if match:
            return str(meta.get(match.group(1), {}).get(match.group(2), ""))
        values = {
            "metadata.name": meta["name"],
            "metadata.namespace": self.namespace,
            "metadata.uid": meta["uid"],
            "spec.nodeName": self.pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", ""),
            "status.hostIP": self.pod_ip,
            "status.podIP": self.pod_ip,
        }
        if field_path not in values:
            raise PodConfigError("CreateContainerConfigError", f"unsupported fieldRef {field_path}")
        return str(values[field_path])

    def container_env(self, container: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref is None:
                    continue
                data = self._data(kind, ref["name"])
                if data is None:
                    if ref.get("optional"):
                        continue
                    label = "configmap" if kind == "configMap" else kind
                    raise PodConfigError("CreateContainerConfigError", f'{label} "{ref["name"]}" not found')
                env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
        for var in container.get("env", []):
            value = self._env_value(var, env)
            if value is not None:
                env[var["name"]] = value
        return env

    def _env_value(self, var: dict[str, Any], env: dict[str, str]) -> str | None:
        if "valueFrom" not in var:
            return expand(var.get("value", ""), env)
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            raw = self._key("secret", source["secretKeyRef"], "CreateContainerConfigError")
        elif "configMapKeyRef" in source:
            raw = self._key("configMap", source["configMapKeyRef"], "CreateContainerConfigError")
        elif "fieldRef" in source:
            return self.field_value(source["fieldRef"]["fieldPath"])
        else:
            raise PodConfigError("CreateContainerConfigError", f"unsupported valueFrom for {var['name']}")
        return None if raw is None else raw.decode(errors="replace")

    # -- volumes -------------------------------------------------------------------------------

    def volume_dirs(self) -> dict[str, Path]:
        """Materialize every volume of the pod; return volume name -> host path."""
        result: dict[str, Path] = {}
        for volume in self.pod["spec"].get("volumes", []):
            name = volume["name"]
            target = self.pod_dir / "volumes" / name
            if "hostPath" in volume:
                result[name] = self._host_path(volume["hostPath"])
                continue
            if "persistentVolumeClaim" in volume:
                result[name] = self._claim_path(volume["persistentVolumeClaim"]["claimName"])
                continue
            target.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                pass
            elif "configMap" in volume:
                self._project_object("configMap", volume["configMap"], target)
            elif "secret" in volume:
                source = dict(volume["secret"], name=volume["secret"]["secretName"])
                self._project_object("secret", source, target)
            elif "projected" in volume:
                for item in volume["projected"].get("sources", []):
                    self._project_source(item, target)
            elif "downwardAPI" in volume:
                self._project_downward(volume["downwardAPI"], target)
            else:
                kinds = sorted(set(volume) - {"name"})
                raise PodConfigError("FailedMount", f"volume {name}: type {kinds} is not supported by the local node")
            result[name] = target
        return result

    def _host_path(self, source: dict[str, Any]) -> Path:
        path = Path(source["path"])
        kind = source.get("type", "")
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind in ("Directory", "File") and not path.exists():
            raise PodConfigError("FailedMount", f"hostPath {path} does not exist")
        return path

    def _claim_path(self, claim_name: str) -> Path:
        """The directory of the PersistentVolume bound to the claim; FailedMount until it is bound."""
        try:
            claim = self.core.read_namespaced_persistent_volume_claim(claim_name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            raise PodConfigError("FailedMount", f'persistentvolumeclaim "{claim_name}" not found') from error
        if claim.status.phase != "Bound" or not claim.spec.volume_name:
            raise PodConfigError("FailedMount", f'persistentvolumeclaim "{claim_name}" is not bound')
        volume = self.core.read_persistent_volume(claim.spec.volume_name)
        if volume.spec.host_path is None:
            raise PodConfigError(
                "FailedMount", f"persistentvolume {claim.spec.volume_name}: only hostPath volumes are mounted here"
            )
        return self._host_path({"path": volume.spec.host_path.path, "type": "DirectoryOrCreate"})

    def _project_object(self, kind: str, source: dict[str, Any], target: Path) -> None:
        data = self._data(kind, source["name"])
        if data is None:
            if source.get("optional"):
                return
            label = "configmap" if kind == "configMap" else kind
            raise PodConfigError("FailedMount", f'{label} "{source["name"]}" not found')
        mode = source.get("defaultMode", 0o644)
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise PodConfigError("FailedMount", f"key {item['key']} not found in {kind} {source['name']}")
            _write(target / item["path"], data[item["key"]], item.get("mode", mode))

    def _project_source(self, item: dict[str, Any], target: Path) -> None:
        if "serviceAccountToken" in item:
            spec = item["serviceAccountToken"]
            _write(target / spec["path"], self._token(spec).encode(), 0o600)
        elif "configMap" in item:
            self._project_object("configMap", item["configMap"], target)
        elif "secret" in item:
            self._project_object("secret", item["secret"], target)
        elif "downwardAPI" in item:
            self._project_downward(item["downwardAPI"], target)

    def _project_downward(self, source: dict[str, Any], target: Path) -> None:
        for item in source.get("items", []):
            if "fieldRef" in item:
                _write(target / item["path"], self.field_value(item["fieldRef"]["fieldPath"]).encode(), 0o644)

    def _token(self, spec: dict[str, Any]) -> str:
        """A token bound to this pod from the TokenRequest API, as kubelet gets one."""
        meta = self.pod["metadata"]
        account = self.pod["spec"].get("serviceAccountName") or "default"
        body: dict[str, Any] = {
            "spec": {
                "expirationSeconds": max(int(spec.get("expirationSeconds", 3600)), 600),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
            }
        }
        if spec.get("audience"):
            body["spec"]["audiences"] = [spec["audience"]]
        try:
            response = self.core.create_namespaced_service_account_token(account, self.namespace, body)
        except ApiException as error:
            raise PodConfigError("FailedMount", f"token for service account {account}: {error.reason}") from error
        return str(response.status.token)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion; ``$$(VAR)`` escapes, unknown references stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, value)


def _write(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
