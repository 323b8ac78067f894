"""Pod networking for the local node: a bridge per node, a network namespace and address per pod.

What a CNI plugin (``bridge`` + ``host-local``) does on a real node, done with ``ip``
from iproute2: the node owns a Linux bridge ``flbrN`` with ``10.244.N.1/24``; each
isolated pod gets a network namespace ``flN-I`` whose ``eth0`` (one end of a veth
pair, the other end on the bridge) has ``10.244.N.I/24`` and a default route via the
bridge. Pods on one node reach each other and the node; the host reaches every pod
at its address (so the API server can call a webhook served by a pod).

Service addresses live in one more namespace, ``flN-svc`` (``10.244.N.254`` on the
bridge): every pod routes the service range there, where the node's proxy listens
(:mod:`.services`). They stay out of the pods' own namespaces, where a pod listening on
``0.0.0.0:P`` would clash with a Service port ``P``, and out of the host's, which every
cluster on the machine shares.

Several clusters may run on one machine at once (one per test session): each node
takes the first free bridge index, claimed atomically by creating the link, and
records its PID in the link's alias so a later node can reclaim what a killed node
left behind.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

POD_NETWORK_PREFIX = "10.244"
_SERVICE_HOST = 254
_ALIAS_PREFIX = "feast-lineage-local-node pid="
_CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/run/netns")

T = TypeVar("T")


class PodNetworkError(RuntimeError):
    """The node could not give a pod its network (the message says which command failed)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise PodNetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class PodAddress:
    ip: str
    netns: str

    @property
    def netns_path(self) -> Path:
        return _NETNS_DIR / self.netns


class PodNetwork:
    """The bridge of one node and the addresses it has handed out."""

    def __init__(self, service_range: str) -> None:
        self.index = 0
        self.service_range = service_range
        # Handed out from the front, given back at the end: an address comes round again only after
        # every other one (as host-local IPAM's round robin does), so the host's neighbour cache and
        # the API server's connections never meet a new pod at an address a gone pod just had.
        self._free = collections.deque(range(2, _SERVICE_HOST))
        self._by_uid: dict[str, PodAddress] = {}
        self._lock = threading.Lock()

    @property
    def bridge(self) -> str:
        return f"flbr{self.index}"

    @property
    def gateway(self) -> str:
        return f"{POD_NETWORK_PREFIX}.{self.index}.1"

    @property
    def services(self) -> PodAddress:
        """The namespace holding every ClusterIP, where the proxy listens."""
        return PodAddress(f"{POD_NETWORK_PREFIX}.{self.index}.{_SERVICE_HOST}", f"fl{self.index}-svc")

    def setup(self) -> None:
        """Claim a free bridge index and bring the bridge up."""
        for index in range(1, 255):
            name = f"flbr{index}"
            if _ip("link", "add", name, "type", "bridge", check=False).returncode != 0:
                if not _reclaim(index):
                    continue
                if _ip("link", "add", name, "type", "bridge", check=False).returncode != 0:
                    continue
            self.index = index
            _ip("link", "set", name, "alias", f"{_ALIAS_PREFIX}{os.getpid()}")
            _ip("addr", "add", f"{self.gateway}/24", "dev", name)
            _ip("link", "set", name, "up")
            self._plug(self.services, _SERVICE_HOST, route_services=False)
            return
        raise PodNetworkError("no free bridge index for pod networking (flbr1..flbr254 all in use)")

    def attach(self, uid: str) -> PodAddress:
        """A network namespace with its own address for the pod ``uid`` (idempotent)."""
        with self._lock:
            if uid in self._by_uid:
                return self._by_uid[uid]
            if not self._free:
                raise PodNetworkError(f"no free pod address on {self.bridge}")
            host = self._free.popleft()
        address = PodAddress(f"{POD_NETWORK_PREFIX}.{self.index}.{host}", f"fl{self.index}-{host}")
        try:
            self._plug(address, host, route_services=True)
        except PodNetworkError:
            with self._lock:
                self._free.append(host)
            raise
        with self._lock:
            self._by_uid[uid] = address
        return address

    def _plug(self, address: PodAddress, host: int, route_services: bool) -> None:
        """A namespace with ``eth0`` on the bridge at ``address``; pods route the service range onwards."""
        veth = f"flv{self.index}-{host}"
        try:
            _ip("netns", "del", address.netns, check=False)
            _ip("netns", "add", address.netns)
            # The kernel removes a deleted namespace's veth a moment after the namespace: one left by an
            # earlier node of this bridge index (or an earlier pod at this address) would refuse the name.
            _ip("link", "del", veth, check=False)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", address.netns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            ns = ("-n", address.netns)
            _ip(*ns, "link", "set", "lo", "up")
            _ip(*ns, "addr", "add", f"{address.ip}/24", "dev", "eth0")
            _ip(*ns, "link", "set", "eth0", "up")
            _ip(*ns, "route", "add", "default", "via", self.gateway)
            if route_services:
                _ip(*ns, "route", "add", self.service_range, "via", self.services.ip)
        except PodNetworkError:
            _ip("netns", "del", address.netns, check=False)
            raise

    def detach(self, uid: str) -> None:
        with self._lock:
            address = self._by_uid.pop(uid, None)
        if address is None:
            return
        # Deleting the namespace deletes its veth end, and with it the bridge's end.
        _ip("netns", "del", address.netns, check=False)
        with self._lock:
            self._free.append(int(address.ip.rsplit(".", 1)[1]))

    def teardown(self) -> None:
        for uid in list(self._by_uid):
            self.detach(uid)
        if self.index:
            _ip("netns", "del", self.services.netns, check=False)
            _ip("link", "del", self.bridge, check=False)


def _reclaim(index: int) -> bool:
    """Delete bridge ``index`` and its namespaces if the node that made it is gone."""
    shown = _ip("-o", "link", "show", f"flbr{index}", check=False).stdout
    if _ALIAS_PREFIX not in shown:
        return False
    pid = int(shown.split(_ALIAS_PREFIX, 1)[1].split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        return False
    for netns in _NETNS_DIR.glob(f"fl{index}-*") if _NETNS_DIR.exists() else []:
        _ip("netns", "del", netns.name, check=False)
    _ip("link", "del", f"flbr{index}", check=False)
    return True


def gateway_of_node(pid: int) -> str | None:
    """The bridge address of the node process ``pid`` (None when it runs no pod network): the host's
    address that host-network processes and isolated pods both reach."""
    for line in _ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        name = line.split(":", 2)[1].strip()
        alias = line.split(_ALIAS_PREFIX, 1)[1].split()[0] if _ALIAS_PREFIX in line else ""
        if alias == str(pid) and name.startswith("flbr") and name[4:].isdigit():
            return f"{POD_NETWORK_PREFIX}.{int(name[4:])}.1"
    return None


def in_netns(path: Path, action: Callable[[], T]) -> T:
    """Run ``action`` in a thread that has joined the network namespace at ``path``.

    ``setns`` changes only the calling thread, so a short-lived thread does the work;
    sockets it creates stay in that namespace wherever they are used afterwards.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def enter_and_run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {path}")
            finally:
                os.close(fd)
            result.append(action())
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=enter_and_run, name=f"netns-{path.name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
