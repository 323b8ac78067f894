"""etcd, kube-apiserver and kube-controller-manager on loopback, with real TLS and RBAC.

The security set-up follows envtest: a CA, an apiserver serving certificate for
127.0.0.1, an admin client certificate in ``system:masters`` and an RSA key pair
for service-account tokens. Every port is chosen free at start.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from feast_lineage import certificates
from feast_lineage.devcluster.binaries import Binaries
from feast_lineage.devcluster.processes import ManagedProcess, StartupError, free_port

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
NODE_NAME = "local-node"
KUBELET_CLIENT_NAME = "kube-apiserver-kubelet-client"
"""The API server's identity towards nodes (what the local node lets read container logs)."""


@dataclass
class ControlPlane:
    """A running control plane rooted at ``directory``."""

    directory: Path
    apiserver_port: int
    kubeconfig: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    start_seconds: float = 0.0
    etcd_port: int = 0
    """etcd's client port (plain HTTP on loopback): what tests compact to expire resourceVersions."""

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> Path:
        return self.directory / "pki"

    def stop(self) -> None:
        # Reverse order: controllers first, etcd last.
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.processes}

    def restart_apiserver(self, down_seconds: float = 0.0, timeout: float = 120.0) -> float:
        """Stop kube-apiserver, wait ``down_seconds``, start it again with the same arguments (etcd keeps
        the state); returns the seconds it took to be ready again."""
        index, old = next((i, p) for i, p in enumerate(self.processes) if p.name == "kube-apiserver")
        argv = [str(arg) for arg in old.popen.args]  # type: ignore[union-attr]
        old.stop()
        time.sleep(down_seconds)
        new = ManagedProcess("kube-apiserver", argv, old.log_path)
        self.processes[index] = new
        return new.wait_ready(lambda: _https_get(f"{self.server}/readyz", self.pki)[0] == 200, timeout, "ready")


def _write_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    ca = certificates.make_ca("feast-lineage-dev-ca")
    ca.write(pki / "ca.crt", pki / "ca.key")
    certificates.issue(
        ca,
        "kube-apiserver",
        dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        ip_addresses=("127.0.0.1", "10.96.0.1"),
        server=True,
    ).write(pki / "apiserver.crt", pki / "apiserver.key")
    certificates.issue(ca, "admin", organizations=("system:masters",), client=True).write(
        pki / "admin.crt", pki / "admin.key"
    )
    certificates.issue(ca, "system:kube-controller-manager", client=True).write(
        pki / "controller-manager.crt", pki / "controller-manager.key"
    )
    # The local node serves container logs as a kubelet does: the API server checks the node's
    # serving certificate against the CA, and the node checks the API server's client certificate.
    certificates.issue(
        ca,
        f"system:node:{NODE_NAME}",
        organizations=("system:nodes",),
        dns_names=(NODE_NAME,),
        ip_addresses=("127.0.0.1",),
        server=True,
    ).write(pki / "node.crt", pki / "node.key")
    certificates.issue(ca, KUBELET_CLIENT_NAME, client=True).write(
        pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"
    )
    private, public = certificates.make_rsa_key_pair()
    (pki / "sa.key").write_bytes(private)
    (pki / "sa.key").chmod(0o600)
    (pki / "sa.pub").write_bytes(public)


def _kubeconfig(server: str, pki: Path, user: str) -> str:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "feast-lineage-dev", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "feast-lineage-dev", "context": {"cluster": "feast-lineage-dev", "user": user}}],
        "current-context": "feast-lineage-dev",
    }
    return yaml.safe_dump(config, sort_keys=False)


def _https_get(url: str, pki: Path, timeout: float = 2.0) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
        return int(response.status), bytes(response.read())


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return int(response.status) == 200


def start_control_plane(binaries: Binaries, directory: Path, timeout: float = 120.0) -> ControlPlane:
    """Start etcd, kube-apiserver and kube-controller-manager; return once they serve."""
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    # Every start is a new, empty cluster: fresh certificates could not read an old cluster's tokens.
    shutil.rmtree(directory / "etcd", ignore_errors=True)
    logs = directory / "logs"
    pki = directory / "pki"
    _write_pki(pki)
    etcd_port, etcd_peer_port, api_port, kcm_port = (free_port() for _ in range(4))
    plane = ControlPlane(
        directory=directory, apiserver_port=api_port, kubeconfig=directory / "kubeconfig", etcd_port=etcd_port
    )
    try:
        etcd = ManagedProcess(
            "etcd",
            [
                str(binaries.etcd),
                f"--data-dir={directory / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
                "--unsafe-no-fsync",
                "--watch-progress-notify-interval=5s",
                "--log-level=warn",
            ],
            logs / "etcd.log",
        )
        plane.processes.append(etcd)
        etcd.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), 30, "healthy")

        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(binaries.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={directory / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer=https://127.0.0.1:{api_port}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                # Webhooks (and aggregated APIs) behind a Service are called at an endpoint's address, as
                # kube-proxy would route them: the API server runs on no pod network of its own.
                "--enable-aggregator-routing=true",
                # `kubectl logs`: reach the node's endpoint on its InternalIP, over verified TLS both ways.
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP",
                "--v=1",
            ],
            logs / "kube-apiserver.log",
        )
        plane.processes.append(apiserver)
        apiserver.wait_ready(lambda: _https_get(f"{plane.server}/readyz", pki)[0] == 200, timeout, "ready (/readyz)")
        plane.kubeconfig.write_text(_kubeconfig(plane.server, pki, "admin"))
        kcm_kubeconfig = directory / "controller-manager.kubeconfig"
        kcm_kubeconfig.write_text(_kubeconfig(plane.server, pki, "controller-manager"))

        controller_manager = ManagedProcess(
            "kube-controller-manager",
            [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--leader-elect=false",
                # Local nodes send no heartbeats; the lifecycle controller would evict their pods.
                "--controllers=*,-node-lifecycle-controller,-node-ipam-controller",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={directory / 'kcm-certs'}",
                "--v=1",
            ],
            logs / "kube-controller-manager.log",
        )
        plane.processes.append(controller_manager)
        # The service-account controller creating `default` proves the controllers run.
        controller_manager.wait_ready(
            lambda: _default_service_account_exists(plane), 60, "running (no default ServiceAccount)"
        )
    except BaseException:
        plane.stop()
        raise
    plane.start_seconds = time.monotonic() - started
    return plane


def _default_service_account_exists(plane: ControlPlane) -> bool:
    status, body = _https_get(f"{plane.server}/api/v1/namespaces/default/serviceaccounts/default", plane.pki)
    return status == 200 and json.loads(body).get("metadata", {}).get("name") == "default"


__all__ = ["ControlPlane", "StartupError", "start_control_plane"]
