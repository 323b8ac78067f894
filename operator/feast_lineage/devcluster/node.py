"""A local node: stands in for kubelet and a container runtime.

It registers a Ready Node, binds every unscheduled pod to itself, and runs each
container's ``command`` + ``args`` as a local process of this machine's Python
environment (images are not pulled: the image name is recorded, not used). Each
container gets its own mount namespace with the pod's volumes at their mount
paths, the pod's environment, its working directory and a service-account token
from the TokenRequest API, so RBAC applies to what it does. Status flows back as
a kubelet reports it: Running, then Succeeded or Failed with exit code, reason
and termination message. Pod output is kept under the node's state directory and served over
HTTPS as a kubelet serves it, so ``kubectl logs`` works (:mod:`.node_logs`). Probes are run
(:mod:`.probes`): readiness gates the pod's ``Ready`` condition, a failed liveness probe
restarts the container. PersistentVolumeClaims are provisioned on local directories
(:mod:`.local_volumes`).

Pods share the host's network by default (``127.0.0.1``), as the rest of the tooling
expects. An *isolated* pod (``--pod-isolation=pod`` for every pod, or
``local-node.featurelineage.io/isolation: pod`` as an annotation of the pod or a label of
its namespace, the annotation first; ``hostNetwork: true`` never is)
runs as a kubelet would run it: its own network namespace and address on the node's
bridge (:mod:`.pod_network`), Services by name and ClusterIP (:mod:`.services`), and
its security context's user and read-only root honoured (:mod:`.container_init`).

Run as ``python -m feast_lineage.devcluster.node --kubeconfig K --state-dir D``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from feast_lineage.devcluster import node_logs
from feast_lineage.devcluster.controlplane import SERVICE_CLUSTER_IP_RANGE
from feast_lineage.devcluster.local_volumes import LocalVolumes
from feast_lineage.devcluster.pod_files import Mount, Pod, PodConfigError, PodFiles, expand
from feast_lineage.devcluster.pod_network import PodNetwork, PodNetworkError
from feast_lineage.devcluster.probes import ContainerProbes, ProbeContext
from feast_lineage.devcluster.security import ContainerUser, container_user
from feast_lineage.devcluster.services import ServiceProxy
from feast_lineage.devcluster.watching import watch_forever
from feast_lineage.timestamps import now_rfc3339

log = logging.getLogger("local-node")

NODE_IP = "127.0.0.1"
_TERMINATION_MESSAGE_LIMIT = 4096
_STATUS_RETRY_SECONDS = 600.0
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ISOLATION_ANNOTATION = "local-node.featurelineage.io/isolation"


def _now() -> str:
    return now_rfc3339()


class PodRun(threading.Thread):
    """Runs one pod to completion (or until it is deleted)."""

    def __init__(self, node: LocalNode, pod: Pod) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.node = node
        self.pod = pod
        self.core = client.CoreV1Api(node.api)
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.pod_dir = node.state_dir / "pods" / f"{self.namespace}_{self.pod_name}_{meta['uid'][:8]}"
        self.stopping = threading.Event()
        self.grace_seconds = 30.0
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self.started_at = _now()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.restart_counts: dict[str, int] = {}
        self.ready: dict[str, bool] = {}
        self.isolated = node.isolates(pod)
        self.pod_ip = NODE_IP
        self.netns = Path()
        self.hosts_file = Path()
        self._status_lock = threading.Lock()
        self._final = False

    # -- public ----------------------------------------------------------------------------------

    def terminate(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.stopping.set()
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)

    def run(self) -> None:
        # A node has room for so many pods at once; the rest wait, as on a full node.
        while not self.node.slots.acquire(timeout=0.5):
            if self.stopping.is_set():
                return
        try:
            if not self.stopping.is_set() and self._attach_network():
                self._run()
        except Exception:
            log.exception("pod %s/%s: unexpected error", self.namespace, self.pod_name)
        finally:
            self.node.slots.release()
            self._detach_network()

    def _attach_network(self) -> bool:
        """An isolated pod's sandbox: its network namespace, address and hosts file."""
        if not self.isolated:
            return True
        uid = self.pod["metadata"]["uid"]
        try:
            if self.node.network is None or self.node.proxy is None:
                raise PodNetworkError("this node runs no pod network (it needs root and iproute2's `ip`)")
            address = self.node.network.attach(uid)
        except PodNetworkError as error:
            self.node.event(self.pod, "FailedCreatePodSandBox", str(error), "Warning")
            self._finish("Failed", reason="FailedCreatePodSandBox", message=str(error))
            return False
        self.pod_ip = address.ip
        self.netns = address.netns_path
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        self.hosts_file = self.pod_dir / "hosts"
        self.node.proxy.add_pod(uid, address, self.namespace, self.pod_name, self.hosts_file)
        return True

    def _detach_network(self) -> None:
        if self.isolated and self.node.network is not None and self.node.proxy is not None:
            uid = self.pod["metadata"]["uid"]
            self.node.proxy.remove_pod(uid)
            self.node.network.detach(uid)

    # -- lifecycle -------------------------------------------------------------------------------

    def _run(self) -> None:
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        (self.pod_dir / "pod.json").write_text(json.dumps(self.pod, indent=1))
        spec = self.pod["spec"]
        containers = spec.get("containers", [])
        for container in containers:
            self.statuses[container["name"]] = _waiting(container, "ContainerCreating", "")
        volumes = self._prepare_volumes()
        if volumes is None:
            return
        deadline = spec.get("activeDeadlineSeconds")
        if deadline:
            threading.Timer(float(deadline), self._deadline_exceeded).start()
        self._patch_status("Pending", init_done=False)
        for init in spec.get("initContainers", []):
            code = self._run_container(init, volumes, restartable=False)
            if code != 0 or self.stopping.is_set():
                self._finish("Failed", reason="Init:Error" if code else "Terminated")
                return
        threads = [
            threading.Thread(target=self._run_container, args=(c, volumes, True), daemon=True) for c in containers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.stopping.is_set() and getattr(self, "_deadline_hit", False):
            self._finish(
                "Failed",
                reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline",
            )
            return
        codes = [s["state"]["terminated"]["exitCode"] for s in self.statuses.values() if "terminated" in s["state"]]
        failed = len(codes) < len(containers) or any(code != 0 for code in codes)
        self._finish("Failed" if failed else "Succeeded")

    def _prepare_volumes(self) -> dict[str, Path] | None:
        """Materialize volumes; like kubelet, retry a missing object until it appears or the pod goes."""
        reported = ""
        while not self.stopping.is_set():
            try:
                files = PodFiles(self.core, self.pod, self.pod_dir, self.pod_ip)
                volumes = files.volume_dirs()
                for container in self.pod["spec"].get("initContainers", []) + self.pod["spec"]["containers"]:
                    files.container_env(container, {})
                return volumes
            except PodConfigError as error:
                if error.message != reported:
                    reported = error.message
                    log.info("pod %s/%s: %s: %s", self.namespace, self.pod_name, error.reason, error.message)
                    waiting_reason = "ContainerCreating" if error.reason == "FailedMount" else error.reason
                    for container in self.pod["spec"]["containers"]:
                        self.statuses[container["name"]] = _waiting(container, waiting_reason, error.message)
                    self._patch_status("Pending", init_done=False)
                    self.node.event(self.pod, error.reason, error.message, "Warning")
                self.stopping.wait(2.0)
        return None

    def _deadline_exceeded(self) -> None:
        self._deadline_hit = True
        self.terminate(0)

    def _run_container(self, container: dict[str, Any], volumes: dict[str, Path], restartable: bool) -> int:
        name = container["name"]
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = RestartBackoff()
        while True:
            started = time.monotonic()
            code = self._run_once(container, volumes)
            if not restartable or self.stopping.is_set():
                return code
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return code
            self.restart_counts[name] = self.restart_counts.get(name, 0) + 1
            if self.stopping.wait(backoff.after_run(time.monotonic() - started)):
                return code

    def _run_once(self, container: dict[str, Any], volumes: dict[str, Path]) -> int:
        name = container["name"]
        files = PodFiles(self.core, self.pod, self.pod_dir, self.pod_ip)
        try:
            env = files.container_env(container, self._base_env())
        except PodConfigError as error:
            self.statuses[name] = _terminated(container, 1, "CreateContainerConfigError", error.message, _now(), _now())
            return 1
        argv = [expand(a, env) for a in container.get("command", []) + container.get("args", [])]
        try:
            user = container_user(self.pod, container) if self.isolated else None
        except ValueError as error:
            self.statuses[name] = _terminated(container, 1, "CreateContainerConfigError", str(error), _now(), _now())
            return 1
        termination_log = self.pod_dir / f"{name}.termination-log"
        termination_log.write_text("")
        output = self.pod_dir / f"{name}.log"
        if not container.get("command"):
            message = "the local node runs only containers that set a command (images are not pulled)"
            self.statuses[name] = _terminated(container, 128, "StartError", message, _now(), _now())
            return 128
        mounts = [
            Mount(volumes[m["name"]] / m.get("subPath", ""), m["mountPath"], bool(m.get("readOnly")))
            for m in container.get("volumeMounts", [])
        ]
        termination_path = container.get("terminationMessagePath", "/dev/termination-log")
        mounts.append(Mount(termination_log, termination_path, False))
        init_spec: dict[str, Any] = {
            "argv": argv,
            "env": env,
            "workingDir": container.get("workingDir") or str(self.pod_dir / "workdir"),
            "terminationLog": str(termination_log),
            "terminationLogInContainer": termination_path,
        }
        wrapper: list[str] = []
        if self.isolated:
            mounts.append(Mount(self.hosts_file, "/etc/hosts", False))
            wrapper = ["nsenter", f"--net={self.netns}"]
            security = container.get("securityContext") or {}
            init_spec["readOnlyRootFilesystem"] = bool(security.get("readOnlyRootFilesystem"))
            if user is not None:
                user.give_files(volumes, self.pod, [termination_log])
                init_spec["user"] = user.as_spec()
                if user.uid:
                    # A user without a passwd entry: HOME is /, and so is an image's usual working directory.
                    env["HOME"] = "/"
                    init_spec["workingDir"] = container.get("workingDir") or "/"
                    # The node's Python is the image: whoever the container runs as must reach it.
                    init_spec["exposedPaths"] = [str(Path(sys.base_prefix).resolve())]
        init_spec["mounts"] = [{"source": str(m.source), "target": m.target, "readOnly": m.read_only} for m in mounts]
        spec_path = self.pod_dir / f"{name}.container.json"
        spec_path.write_text(json.dumps(init_spec))
        spec_path.chmod(0o600)
        started = _now()
        header = f"--- {started} {' '.join(argv)}\n".encode()
        header_offset = output.stat().st_size if output.exists() else 0
        node_logs.record_start(output, header_offset, header_offset + len(header))
        with output.open("ab") as out:
            out.write(header)
            out.flush()
            process = subprocess.Popen(
                [
                    *wrapper,
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    "-m",
                    "feast_lineage.devcluster.container_init",
                    str(spec_path),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={"PATH": env.get("PATH", _SYSTEM_PATH), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                start_new_session=True,
            )
        with self._lock:
            self._processes[name] = process
        # Without readiness or startup probes a running container is ready, as kubelet has it.
        self.ready[name] = not (container.get("readinessProbe") or container.get("startupProbe"))
        probes = self._probes(container, process, env, user)
        self.statuses[name] = _running(container, started, self.restart_counts.get(name, 0), self.ready[name])
        self._patch_status("Running", init_done=True)
        self.node.event(self.pod, "Started", f"Started container {name}", "Normal")
        probes.start()
        code = self._wait(process)
        probes.stop()
        self.ready[name] = False
        with self._lock:
            self._processes.pop(name, None)
        message = termination_log.read_bytes()[:_TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
        if code != 0 and not message and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = output.read_bytes().decode(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        reason = "Completed" if code == 0 else "Error"
        self.statuses[name] = _terminated(
            container, code, reason, message, started, _now(), self.restart_counts.get(name, 0)
        )
        return code

    def _probes(
        self,
        container: dict[str, Any],
        process: subprocess.Popen[bytes],
        env: dict[str, str],
        user: ContainerUser | None,
    ) -> ContainerProbes:
        name = container["name"]
        ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if p.get("name")}
        context = ProbeContext(
            self.pod_ip, process.pid, env, ports, user.uid if user else None, user.gid if user else None
        )

        def on_ready(ready: bool) -> None:
            self.ready[name] = ready
            status = self.statuses.get(name, {})
            if "running" in status.get("state", {}):
                status["ready"] = ready
                self._patch_status("Running", init_done=True)

        def on_unhealthy(kind: str, message: str) -> None:
            self.node.event(
                self.pod, "Killing", f"Container {name} failed {kind.lower()} probe, will be restarted", "Normal"
            )
            self._kill(process, float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))

        def on_event(reason: str, message: str) -> None:
            self.node.event(self.pod, reason, message, "Warning")

        return ContainerProbes(container, context, on_ready, on_unhealthy, on_event)

    def _kill(self, process: subprocess.Popen[bytes], grace: float) -> None:
        """Stop one container's process: SIGTERM, then SIGKILL after its grace period (at most 10 s here)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=min(grace, 10.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _wait(self, process: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if self.stopping.is_set():
                    try:
                        code = process.wait(timeout=self.grace_seconds)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(process.pid, signal.SIGKILL)
                        code = process.wait()
                    break
        # Signals become 128 + signal number, as a container runtime reports them.
        return 128 - code if code < 0 else code

    def _base_env(self) -> dict[str, str]:
        node_bin = str(Path(sys.executable).parent)
        home = self.pod_dir / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": f"{node_bin}:{_SYSTEM_PATH}",
            "HOSTNAME": self.pod_name,
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "KUBERNETES_SERVICE_HOST": NODE_IP,
            "KUBERNETES_SERVICE_PORT": str(self.node.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.node.apiserver_port),
        }
        if self.isolated:
            # Inside its own network the pod reaches the API server as pods do: the kubernetes Service.
            env["KUBERNETES_SERVICE_HOST"] = self.node.kubernetes_service_ip
            env["KUBERNETES_SERVICE_PORT"] = env["KUBERNETES_SERVICE_PORT_HTTPS"] = "443"
        for name in ("NO_PROXY", "no_proxy", "PYTHONPATH", "TZ"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    # -- status ----------------------------------------------------------------------------------

    def _finish(self, phase: str, reason: str = "", message: str = "") -> None:
        for container in self.pod["spec"]["containers"]:
            status = self.statuses.get(container["name"], {})
            if "terminated" not in status.get("state", {}):
                self.statuses[container["name"]] = _terminated(
                    container, 137, reason or "Error", message, self.started_at, _now()
                )
        self._patch_status(phase, init_done=True, reason=reason, message=message)
        log.info("pod %s/%s: %s %s", self.namespace, self.pod_name, phase, reason)

    def _patch_status(self, phase: str, init_done: bool, reason: str = "", message: str = "") -> None:
        # Probe and container threads both report: one at a time, and nothing after the final phase.
        with self._status_lock:
            if self._final:
                return
            self._final = phase in ("Succeeded", "Failed")
            self._write_status(phase, init_done, reason, message)

    def _write_status(self, phase: str, init_done: bool, reason: str, message: str) -> None:
        running = phase == "Running" and all("running" in s["state"] for s in self.statuses.values())
        ready = running and all(s.get("ready") for s in self.statuses.values())
        now = _now()

        def condition(kind: str, ok: bool) -> dict[str, str]:
            return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now}

        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.started_at,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", init_done),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": list(self.statuses.values()),
        }
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        self._send_status(status)

    def _send_status(self, status: dict[str, Any]) -> None:
        """As kubelet's status manager does, a status the API server did not take (restarting, overloaded)
        is sent again until it is: a pod that ended while the API server was away must not look
        Running forever, holding its Job."""
        deadline = time.monotonic() + _STATUS_RETRY_SECONDS
        delay = 0.5
        while True:
            try:
                self.core.patch_namespaced_pod_status(self.pod_name, self.namespace, {"status": status})
                return
            except ApiException as error:
                if error.status == 404:
                    return
                failure = f"{error.status} {error.reason}"
                if error.status not in _TRANSIENT_STATUSES:
                    log.warning("pod %s/%s: status patch refused: %s", self.namespace, self.pod_name, failure)
                    return
            except (urllib3.exceptions.HTTPError, OSError) as error:
                failure = str(error)
            if time.monotonic() + delay > deadline:
                log.warning("pod %s/%s: status patch gave up: %s", self.namespace, self.pod_name, failure)
                return
            log.info(
                "pod %s/%s: status patch failed (%s); again in %.1fs", self.namespace, self.pod_name, failure, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class RestartBackoff:
    """The delay before a container's restart: doubling from 1 s up to a maximum, and starting over
    after a run of twice the maximum, kubelet's rule (its maximum is 5 minutes; a local cluster's
    pods are restarted sooner), so a crash after a long healthy run is not held back."""

    MAXIMUM = 30.0

    def __init__(self) -> None:
        self.delay = 1.0

    def after_run(self, ran_for: float) -> float:
        """The delay before restarting a container that ran ``ran_for`` seconds."""
        if ran_for >= 2 * self.MAXIMUM:
            self.delay = 1.0
        current = self.delay
        self.delay = min(self.delay * 2, self.MAXIMUM)
        return current


def _container_base(container: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": restarts,
        "started": False,
    }


def _waiting(container: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    state = {"reason": reason, **({"message": message} if message else {})}
    return {**_container_base(container), "state": {"waiting": state}}


def _running(container: dict[str, Any], started: str, restarts: int, ready: bool) -> dict[str, Any]:
    return {
        **_container_base(container, restarts),
        "ready": ready,
        "started": True,
        "containerID": f"local://{container['name']}",
        "state": {"running": {"startedAt": started}},
    }


def _terminated(
    container: dict[str, Any], code: int, reason: str, message: str, started: str, finished: str, restarts: int = 0
) -> dict[str, Any]:
    terminated: dict[str, Any] = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished}
    if message:
        terminated["message"] = message
    return {
        **_container_base(container, restarts),
        "containerID": f"local://{container['name']}",
        "state": {"terminated": terminated},
    }


class _Unbounded:
    """A semaphore that never blocks."""

    def acquire(self, timeout: float | None = None) -> bool:
        return True

    def release(self) -> None:
        pass


class LocalNode:
    """Registers the Node, binds pods, and keeps one :class:`PodRun` per live pod."""

    def __init__(
        self, api: client.ApiClient, name: str, state_dir: Path, max_running: int = 0, isolate_all: bool = False
    ) -> None:
        self.api = api
        self.name = name
        self.state_dir = state_dir
        self.slots = threading.BoundedSemaphore(max_running) if max_running > 0 else _Unbounded()
        self.core = client.CoreV1Api(api)
        self.apiserver_port = urlparse(api.configuration.host).port or 443
        self.runs: dict[str, PodRun] = {}
        self.deleting: set[str] = set()
        self.kubelet_port: int | None = None
        """Where container logs are served (``status.daemonEndpoints``), when they are."""
        self.isolate_all = isolate_all
        self.network: PodNetwork | None = None
        self.proxy: ServiceProxy | None = None
        self.kubernetes_service_ip = ""

    def isolates(self, pod: Pod) -> bool:
        """Whether the pod gets its own network and security context (see the module's docstring)."""
        if pod["spec"].get("hostNetwork"):
            return False
        wanted = (pod["metadata"].get("annotations") or {}).get(ISOLATION_ANNOTATION)
        if wanted not in ("pod", "host"):
            # A namespace's label decides for pods whose templates the user does not write (a chart's, say).
            try:
                namespace = self.core.read_namespace(pod["metadata"]["namespace"])
                wanted = (namespace.metadata.labels or {}).get(ISOLATION_ANNOTATION)
            except ApiException:
                wanted = None
        return wanted == "pod" if wanted in ("pod", "host") else self.isolate_all

    def start_pod_network(self) -> None:
        """The bridge and the Service proxy for isolated pods; without root or `ip`, isolated pods fail."""
        if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
            log.warning("no pod network: isolated pods need root, iproute2's `ip` and `nsenter`")
            return
        network = PodNetwork(SERVICE_CLUSTER_IP_RANGE)
        network.setup()
        self.network = network
        self.kubernetes_service_ip = self.core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
        host = urlparse(self.api.configuration.host).hostname or NODE_IP
        self.proxy = ServiceProxy(self.api, (host, self.apiserver_port), network.services)
        self.proxy.start()
        log.info("pod network on %s (%s/24)", network.bridge, network.gateway)

    def stop_pod_network(self) -> None:
        for run in list(self.runs.values()):
            run.terminate(0)
        if self.network is not None:
            self.network.teardown()

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        """Whether that container of that pod has a live process on this node now."""
        for run in list(self.runs.values()):
            if run.namespace == namespace and run.pod_name == pod:
                with run._lock:
                    if container in run._processes:
                        return True
        return False

    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "featurelineage.io/local-node": "true",
                },
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as error:
            if error.status != 409:
                raise
        now = _now()
        cpus = str(os.cpu_count() or 1)
        capacity = {"cpu": cpus, "memory": f"{_memory_kib()}Ki", "pods": "250", "ephemeral-storage": "100Gi"}
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHas{ok}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for kind, ok in (
                ("MemoryPressure", "SufficientMemory"),
                ("DiskPressure", "NoDiskPressure"),
                ("PIDPressure", "SufficientPID"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "local node runs pods as local processes",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        )
        status: dict[str, Any] = {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": self.name}],
            "nodeInfo": {
                "kubeletVersion": "local",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "local://processes",
            },
        }
        if self.kubelet_port:
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet_port}}
        self.core.patch_node_status(self.name, {"status": status})

    def event(self, pod: Pod, reason: str, message: str, kind: str) -> None:
        meta = pod["metadata"]
        now = _now()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": "local-node", "host": self.name},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_event(meta["namespace"], body)

    # -- reconcile -------------------------------------------------------------------------------

    def handle(self, pod: Pod) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        node_name = spec.get("nodeName")
        if node_name and node_name != self.name:
            return
        phase = pod.get("status", {}).get("phase", "Pending")
        if meta.get("deletionTimestamp"):
            self._delete(pod)
            return
        if not node_name:
            self._bind(pod)
            return
        if uid in self.runs or phase in ("Succeeded", "Failed"):
            return
        if phase == "Running":
            # Started by an earlier node process whose children are gone, as kubelet reports a lost pod.
            run = PodRun(self, pod)
            run._finish("Failed", reason="NodeLost", message="the local node restarted while the pod ran")
            return
        run = PodRun(self, pod)
        self.runs[uid] = run
        run.start()

    def forget(self, pod: Pod) -> None:
        uid = pod["metadata"]["uid"]
        run = self.runs.pop(uid, None)
        if run is not None:
            run.terminate(0)
        self.deleting.discard(uid)

    def _bind(self, pod: Pod) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        try:
            # The generated client mis-parses the Binding response, so the reply is not decoded.
            self.core.create_namespaced_pod_binding(meta["name"], meta["namespace"], body, _preload_content=False)
        except ApiException as error:
            if error.status not in (404, 409):
                log.warning("bind %s/%s failed: %s", meta["namespace"], meta["name"], error.reason)

    def _delete(self, pod: Pod) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.deleting:
            return
        self.deleting.add(uid)
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        threading.Thread(target=self._finish_deletion, args=(pod, min(grace, 30.0)), daemon=True).start()

    def _finish_deletion(self, pod: Pod, grace: float) -> None:
        meta = pod["metadata"]
        run = self.runs.get(meta["uid"])
        if run is not None:
            run.terminate(grace)
            run.join(timeout=grace + 10)
        body = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body=body)
        except ApiException as error:
            if error.status not in (404, 409):
                log.warning("delete %s/%s failed: %s", meta["namespace"], meta["name"], error.reason)

    def run_forever(self) -> None:
        self.register()

        def on_pod(kind: str, pod: Pod) -> None:
            if kind == "DELETED":
                self.forget(pod)
            else:
                self.handle(pod)

        watch_forever(self.core.list_pod_for_all_namespaces, on_pod, threading.Event())


def _memory_kib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 8 * 1024 * 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--name", default="local-node")
    parser.add_argument("--max-running-pods", type=int, default=0, help="pods run at once; 0 = no limit")
    parser.add_argument("--serving-cert", type=Path, help="certificate of the HTTPS endpoint serving container logs")
    parser.add_argument("--serving-key", type=Path, help="its key")
    parser.add_argument("--client-ca", type=Path, help="CA of the API server's kubelet client certificate")
    parser.add_argument("--kubelet-port", type=int, default=0, help="port of that endpoint; 0 = a free one")
    parser.add_argument(
        "--pod-isolation",
        choices=("host", "pod"),
        default="host",
        help=f"default for pods without the {ISOLATION_ANNOTATION} annotation: the host's network, or their own",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if shutil.which("unshare") is None:
        sys.exit("the local node needs `unshare` (util-linux) to give each container its own mounts")
    api = config.new_client_from_config(config_file=args.kubeconfig)
    node = LocalNode(api, args.name, args.state_dir, args.max_running_pods, args.pod_isolation == "pod")
    LocalVolumes(api, args.state_dir / "volumes").start()
    node.start_pod_network()
    # Stopped by SIGTERM (ManagedProcess.stop): leave no bridge or namespace behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if args.serving_cert and args.serving_key and args.client_ca:
        server = node_logs.LogServer(
            args.state_dir / "pods",
            node.is_running,
            cert=args.serving_cert,
            key=args.serving_key,
            client_ca=args.client_ca,
            host=NODE_IP,
            port=args.kubelet_port,
        )
        server.start()
        node.kubelet_port = server.port
        log.info("serving container logs on https://%s:%d", NODE_IP, server.port)
    try:
        node.run_forever()
    finally:
        node.stop_pod_network()


if __name__ == "__main__":
    main()
