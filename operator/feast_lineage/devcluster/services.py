"""Services for isolated pods: a userspace kube-proxy and an ``/etc/hosts`` kept current per pod.

kube-proxy's IPVS mode puts every ClusterIP on a dummy interface and forwards from
there; this node does the same in a namespace of its own that isolated pods route the
service range to (:class:`~feast_lineage.devcluster.pod_network.PodNetwork`): every
ClusterIP is an address of that namespace's ``lo``, where a listener (a socket made in
the namespace, served by one asyncio loop in the node) accepts on each Service port
and forwards to a ready endpoint from the Service's EndpointSlices, chosen at random
per connection, as kube-proxy does. ``default/kubernetes`` forwards to the
API server the node talks to (its EndpointSlice is not kept on this cluster). Only
TCP is proxied.

Name resolution is a hosts file (no cluster DNS server): the node writes one per
pod, mounted at ``/etc/hosts``, naming every Service (``svc.ns.svc.cluster.local``,
``svc.ns.svc``, ``svc.ns`` and, in the pod's own namespace, ``svc``) and rewrites it
in place whenever Services change. Pods on the host network see neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from feast_lineage.devcluster.pod_network import PodAddress, in_netns
from feast_lineage.devcluster.watching import start_watch

log = logging.getLogger("local-node")

CLUSTER_DOMAIN = "cluster.local"

Key = tuple[str, str]
Listen = tuple[str, int]


@dataclass
class _Pod:
    address: PodAddress
    namespace: str
    hostname: str
    hosts_file: Path


class ServiceProxy:
    def __init__(self, api: client.ApiClient, apiserver: Listen, services_netns: PodAddress) -> None:
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.apiserver = apiserver
        self.services: dict[Key, dict[str, Any]] = {}
        self.slices: dict[Key, dict[str, Any]] = {}
        self.pods: dict[str, _Pod] = {}
        self.netns = services_netns
        self.servers: dict[Listen, asyncio.AbstractServer] = {}
        self.stopping = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._lock = threading.RLock()

    def start(self) -> None:
        threading.Thread(target=self.loop.run_forever, name="service-proxy", daemon=True).start()
        start_watch("services", self.core.list_service_for_all_namespaces, self._on_service, self.stopping)
        start_watch(
            "endpointslices", self.discovery.list_endpoint_slice_for_all_namespaces, self._on_slice, self.stopping
        )

    # -- pods --------------------------------------------------------------------------------------

    def add_pod(self, uid: str, address: PodAddress, namespace: str, hostname: str, hosts_file: Path) -> None:
        with self._lock:
            self.pods[uid] = _Pod(address, namespace, hostname, hosts_file)
            self._write_hosts(self.pods[uid])

    def remove_pod(self, uid: str) -> None:
        with self._lock:
            self.pods.pop(uid, None)

    # -- watches -----------------------------------------------------------------------------------

    def _on_service(self, kind: str, service: dict[str, Any]) -> None:
        key = (service["metadata"]["namespace"], service["metadata"]["name"])
        with self._lock:
            if kind == "DELETED":
                self.services.pop(key, None)
            else:
                self.services[key] = service
            self._sync_listeners()
            for pod in self.pods.values():
                self._write_hosts(pod)

    def _on_slice(self, kind: str, endpoint_slice: dict[str, Any]) -> None:
        key = (endpoint_slice["metadata"]["namespace"], endpoint_slice["metadata"]["name"])
        with self._lock:
            if kind == "DELETED":
                self.slices.pop(key, None)
            else:
                self.slices[key] = endpoint_slice

    # -- what each pod sees ------------------------------------------------------------------------

    def _ports(self) -> dict[Listen, tuple[Key, str]]:
        """(ClusterIP, port) -> (Service, port name) for every TCP port of every ClusterIP Service."""
        ports: dict[Listen, tuple[Key, str]] = {}
        for key, service in self.services.items():
            cluster_ip = service["spec"].get("clusterIP")
            if not cluster_ip or cluster_ip == "None":
                continue
            for port in service["spec"].get("ports", []):
                if port.get("protocol", "TCP") == "TCP":
                    ports[(cluster_ip, int(port["port"]))] = (key, port.get("name", ""))
        return ports

    def _sync_listeners(self) -> None:
        wanted = self._ports()
        for listen in set(self.servers) - set(wanted):
            self.loop.call_soon_threadsafe(self.servers.pop(listen).close)
        for listen, target in wanted.items():
            if listen not in self.servers:
                try:
                    self._listen(listen, target)
                except (OSError, subprocess.CalledProcessError) as error:
                    log.warning("service %s/%s on %s:%d: %s", *target[0], *listen, error)

    def _listen(self, listen: Listen, target: tuple[Key, str]) -> None:
        subprocess.run(
            ["ip", "-n", self.netns.netns, "addr", "replace", f"{listen[0]}/32", "dev", "lo"],
            check=True,
            capture_output=True,
        )

        def bound_socket() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(listen)
            sock.listen(128)
            sock.setblocking(False)
            return sock

        sock = in_netns(self.netns.netns_path, bound_socket)

        async def serve() -> asyncio.AbstractServer:
            return await asyncio.start_server(lambda r, w: self._forward(r, w, target), sock=sock)

        self.servers[listen] = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(timeout=10)

    def _write_hosts(self, pod: _Pod) -> None:
        lines = [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            f"{pod.address.ip}\t{pod.hostname}",
        ]
        for (namespace, name), service in sorted(self.services.items()):
            cluster_ip = service["spec"].get("clusterIP")
            if not cluster_ip or cluster_ip == "None":
                continue
            names = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
            if namespace == pod.namespace:
                names.append(name)
            lines.append(f"{cluster_ip}\t{' '.join(names)}")
        text = "\n".join(lines) + "\n"
        # In place: the file is bind-mounted into the pod's containers, so its inode must stay.
        with pod.hosts_file.open("a+") as hosts:
            hosts.seek(0)
            hosts.truncate()
            hosts.write(text)

    # -- forwarding --------------------------------------------------------------------------------

    def _endpoint(self, service: Key, port_name: str) -> Listen | None:
        if service == ("default", "kubernetes"):
            return self.apiserver
        candidates: list[Listen] = []
        with self._lock:
            slices = list(self.slices.values())
        for endpoint_slice in slices:
            meta = endpoint_slice["metadata"]
            if meta["namespace"] != service[0]:
                continue
            if meta.get("labels", {}).get("kubernetes.io/service-name") != service[1]:
                continue
            ports = [p for p in endpoint_slice.get("ports") or [] if p.get("name", "") == port_name]
            if not ports:
                continue
            for endpoint in endpoint_slice.get("endpoints") or []:
                if endpoint.get("conditions", {}).get("ready") is False:
                    continue
                candidates += [(address, int(ports[0]["port"])) for address in endpoint["addresses"]]
        return random.choice(candidates) if candidates else None

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[Key, str]
    ) -> None:
        endpoint = self._endpoint(*target)
        if endpoint is None:
            # kube-proxy rejects connections to a Service without ready endpoints.
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(*endpoint), 10)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        for stream in (writer, upstream_writer):
            with contextlib.suppress(OSError):
                stream.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; pass its end on as a half-close, as TCP would."""
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
