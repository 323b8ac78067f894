"""CPU per admission review of the operator's webhook server: a review answered on the server's event
loop against one handed to a thread and back.

Serves the provenance webhook's review (what every MaterializationJob create passes) over TLS from
this process, in each way in turn (alternating rounds), while a client process sends it a
MaterializationJob's AdmissionReview over one kept-alive connection, one after the other, as the API
server does. Prints this process's CPU time per review (the client's is not in it) and the round trip.

    .venv/bin/python benchmarks/webhook_cpu.py --reviews 3000 --rounds 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.operator_probe import load  # noqa: E402
from feast_lineage.certificates import issue, make_ca  # noqa: E402
from feast_lineage.devcluster.processes import free_port  # noqa: E402
from feast_lineage.injection.server import WebhookServer  # noqa: E402
from feast_lineage.injection.service import MUTATE_RESOURCES_PATH as PATH  # noqa: E402
from feast_lineage.injection.tls import ServingMaterial  # noqa: E402
from feast_lineage.tenancy.admission import mutate_resource  # noqa: E402

WARM_UP = 200


def review() -> bytes:
    """A MaterializationJob create's AdmissionReview, as the API server sends it."""
    run = {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "MaterializationJob",
        "metadata": {
            "name": "mj-1",
            "namespace": "bench",
            "uid": "8f6c1e0a-0000-4000-8000-000000000001",
            "creationTimestamp": None,
            "managedFields": [
                {
                    "manager": "python",
                    "operation": "Update",
                    "apiVersion": "featurelineage.io/v1alpha1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:projectRef": {".": {}, "f:name": {}}, "f:featureViews": {}}},
                }
            ],
        },
        "spec": {"projectRef": {"name": "bench"}, "featureViews": ["fv_1"], "endTime": "2026-11-03T00:00:00Z"},
    }
    kind = {"group": "featurelineage.io", "version": "v1alpha1", "kind": "MaterializationJob"}
    request = {
        "uid": "6d1f0000-0000-4000-8000-000000000002",
        "kind": kind,
        "resource": {"group": "featurelineage.io", "version": "v1alpha1", "resource": "materializationjobs"},
        "requestKind": kind,
        "namespace": "bench",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["team-a", "system:authenticated"]},
        "object": run,
        "oldObject": None,
        "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


def client(port: int, ca_file: str, reviews: int) -> None:
    """The API server's side: reviews one after the other on one connection."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ssl.create_default_context(cafile=ca_file), timeout=30
    )
    body = review()

    def one() -> None:
        connection.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        assert response.status == 200, answer

    for _ in range(WARM_UP):
        one()
    print("warm", flush=True)
    began = time.monotonic()
    for _ in range(reviews):
        one()
    print(f"{(time.monotonic() - began) / reviews * 1e6:.0f}", flush=True)


class Material:
    def __init__(self, material: ServingMaterial) -> None:
        self.material = material

    def load(self) -> ServingMaterial:
        return self.material


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(inline: bool, reviews: int, directory: Path, material: ServingMaterial) -> tuple[float, float]:
    """CPU seconds per review in this process, and the client's round trip in seconds."""
    port = free_port()
    server = WebhookServer(
        "127.0.0.1",
        port,
        Material(material),
        {PATH: mutate_resource},
        inline=frozenset({PATH}) if inline else frozenset(),
    )
    server.start()
    try:
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(material.ca_pem or b"")
        argv = [sys.executable, __file__, "--client", str(port), str(ca_file), str(reviews)]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "warm"
            began = cpu_seconds()
            round_trip = float(process.stdout.readline()) / 1e6
            spent = cpu_seconds() - began
        return spent / reviews, round_trip
    finally:
        server.stop()


def main() -> None:
    if sys.argv[1:2] == ["--client"]:
        client(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reviews", type=int, default=3000, help="per round and way")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ca = make_ca("webhook-cpu-ca")
    leaf = issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    material = ServingMaterial(leaf.cert_pem, leaf.key_pem, ca.cert_pem)
    print(f"load: {load()}")
    figures: dict[str, list[tuple[float, float]]] = {"on a thread": [], "on the loop": []}
    with tempfile.TemporaryDirectory(prefix="feast-lineage-webhook-cpu-") as tmp:
        for n in range(args.rounds):
            ways = [False, True] if n % 2 == 0 else [True, False]
            for inline in ways:
                figures["on the loop" if inline else "on a thread"].append(
                    serve(inline, args.reviews, Path(tmp), material)
                )
    for way, values in figures.items():
        cpu = " / ".join(f"{value[0] * 1e6:.0f}" for value in values)
        trip = " / ".join(f"{value[1] * 1e6:.0f}" for value in values)
        print(f"review {way:>11}: {cpu} us CPU per review (rounds), round trip {trip} us")
    print(f"load: {load()}")


if __name__ == "__main__":
    main()
