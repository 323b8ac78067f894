"""CPU per Kubernetes API request: the Kubernetes client's own path against the operator's (:mod:`.rest`).

Starts a control plane of its own (etcd, kube-apiserver; no node, no operator) and makes the requests
a run's first pass makes, one after the other on one thread: POST an Event, POST a ConfigMap (a body
the size of a Job's), PUT it back, GET it. Each way is timed in alternating rounds, so the machine's
load falls on both alike; the figure is this process's CPU time per request (the API server's is not
in it), which is what the operator spends on each.

    .venv/bin/python benchmarks/request_cpu.py --requests 400 --rounds 3

The client's path is what the operator's requests went through before: ``param_serialize`` (the
body walked by ``sanitize_for_serialization``), ``call_api`` and ``RESTClientObject.request``, then
urllib3's ``PoolManager.request``, with the same bounded client.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import config

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.operator_probe import load  # noqa: E402
from feast_lineage.controller.bounded_client import BoundedApiClient  # noqa: E402
from feast_lineage.controller.kube import CONNECTION_POOL_SIZE  # noqa: E402
from feast_lineage.controller.rest import Rest, query_of  # noqa: E402
from feast_lineage.controller.settings import ApiTimeouts  # noqa: E402
from feast_lineage.devcluster.binaries import ensure_binaries  # noqa: E402
from feast_lineage.devcluster.controlplane import start_control_plane  # noqa: E402

NAMESPACE = "default"
Send = Callable[..., Any]


def client_path(api: BoundedApiClient) -> Send:
    """A request the way the client's generated methods make it (the operator's path before)."""

    def send(method: str, path: str, arguments: dict[str, Any], body: Any = None) -> Any:
        arguments = dict(arguments)
        path_params = {key: arguments.pop(key) for key in list(arguments) if "{" + key + "}" in path}
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        verb, url, header_params, data, post_params = api.param_serialize(
            method,
            path,
            path_params=path_params,
            query_params=query_of(arguments),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(verb, url, header_params=header_params, body=data, post_params=post_params)
        response.read()
        assert 200 <= response.status <= 299, response.status
        return response.response

    return send


def operator_path(api: BoundedApiClient) -> Send:
    rest = Rest(api)
    return lambda method, path, arguments, body=None: rest.request(method, path, arguments, body)


def config_map(i: int) -> dict[str, Any]:
    """About the size of a materialize Job's manifest (some 5 KiB of JSON)."""
    labels = {f"example.org/label-{n}": f"value-{n}" for n in range(12)}
    data = {f"key-{n}": "x" * 300 for n in range(12)}
    return {"metadata": {"name": f"cpu-{i}", "namespace": NAMESPACE, "labels": labels}, "data": data}


def event(i: int) -> dict[str, Any]:
    return {
        "metadata": {"generateName": f"cpu-{i}.", "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": f"cpu-{i}", "namespace": NAMESPACE},
        "type": "Normal",
        "reason": "Benchmark",
        "message": "a run's Event is about this long: Running, its Job created",
        "source": {"component": "request-cpu"},
    }


def one_round(send: Send, tag: str, requests: int) -> float:
    """CPU seconds per request over ``requests`` (a quarter of each kind)."""
    per_kind = requests // 4
    base = f"/api/v1/namespaces/{NAMESPACE}"
    began = time.process_time()
    for i in range(per_kind):
        name = f"{tag}-{i}"
        send("POST", f"{base}/events", {}, event(i))
        created = send("POST", f"{base}/configmaps", {}, config_map(i) | {"metadata": {"name": name}})
        version = json.loads(created.data)["metadata"]["resourceVersion"]
        body = config_map(i) | {"metadata": {"name": name, "resourceVersion": version}}
        send("PUT", f"{base}/configmaps/{{name}}", {"name": name}, body)
        send("GET", f"{base}/configmaps/{{name}}", {"name": name})
    return (time.process_time() - began) / (per_kind * 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feast-lineage-request-cpu-") as tmp:
        plane = start_control_plane(ensure_binaries(), Path(tmp))
        try:
            api_config = config.kube_config.Configuration()
            config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=api_config)
            api_config.connection_pool_maxsize = CONNECTION_POOL_SIZE
            api = BoundedApiClient(api_config, ApiTimeouts())
            paths = {"client": client_path(api), "operator": operator_path(api)}
            for name, send in paths.items():  # warm up: connections open, code paths imported
                one_round(send, f"warm-{name}", 40)
            print(f"load: {load()}")
            figures: dict[str, list[float]] = {name: [] for name in paths}
            for n in range(args.rounds):
                order = list(paths) if n % 2 == 0 else list(reversed(paths))
                for name in order:
                    figures[name].append(one_round(paths[name], f"r{n}-{name}", args.requests))
            for name, values in figures.items():
                shown = " / ".join(f"{value * 1e6:.0f}" for value in values)
                print(f"{name:>8} path: {shown} us CPU per request (rounds; POST, POST, PUT, GET alike)")
            print(f"load: {load()}")
        finally:
            plane.stop()


if __name__ == "__main__":
    main()
