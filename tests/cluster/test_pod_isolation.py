"""The local node as a kubelet and kube-proxy: pod addresses, Services, webhooks, volumes, probes, users.

Pods annotated ``local-node.featurelineage.io/isolation: pod`` get their own network
namespace and address; the rest share the host's network, as the suite's other pods do.
"""

from __future__ import annotations

import base64
import json
import textwrap
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage import certificates
from feast_lineage.install.manifest import helm_template
from tests.chart_helpers import CHART, helm
from tests.cluster_helpers import gone, wait_until
from tests.conftest import Kubectl

pytestmark = pytest.mark.cluster

CM = "configmaps"
ISOLATED = {"local-node.featurelineage.io/isolation": "pod"}

ECHO_SERVER = """
import http.server, os
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["HOSTNAME"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Echo).serve_forever()
"""


def _pod(
    name: str,
    script: str,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    restart: str = "Never",
    volumes: list[dict[str, Any]] | None = None,
    security: dict[str, Any] | None = None,
    **container: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 2,
            "volumes": volumes or [],
            "securityContext": security or {},
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "command": ["python", "-c", textwrap.dedent(script)],
                    **container,
                }
            ],
        },
    }


def _ready(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, namespace)
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    return pod if conditions.get("Ready") == "True" else None


def _ready_or_failed(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    """The pod once Ready; a pod that ended first fails the wait at once, with its container's state."""
    pod = core.read_namespaced_pod(name, namespace)
    if pod.status.phase in ("Succeeded", "Failed"):
        raise AssertionError(f"pod {name} ended before it was Ready: {pod.status.container_statuses}")
    return _ready(core, namespace, name)


def _condition(core: client.CoreV1Api, namespace: str, name: str, kind: str) -> str:
    pod = core.read_namespaced_pod(name, namespace)
    return next((c.status for c in pod.status.conditions or [] if c.type == kind), "")


def _result(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
    """The JSON a pod wrote to its termination log, once it has finished."""

    def finished() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    pod = wait_until(finished, timeout, f"pod {name} finished")
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded", terminated.message
    return dict(json.loads(terminated.message))


def _get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return bytes(response.read()).decode()


READY_ON_8080: Any = {"readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}


def test_two_isolated_pods_get_their_own_addresses_and_listen_on_one_port(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    for name in ("left", "right"):
        core.create_namespaced_pod(namespace, _pod(name, ECHO_SERVER, annotations=ISOLATED, **READY_ON_8080))
    pods = [wait_until(partial(_ready, core, namespace, name), 60, f"{name} Ready") for name in ("left", "right")]
    addresses = [pod.status.pod_ip for pod in pods]
    assert len(set(addresses)) == 2, addresses
    for pod in pods:
        assert pod.status.pod_ip.startswith("10.244."), pod.status.pod_ip
        assert [ip.ip for ip in pod.status.pod_ips] == [pod.status.pod_ip]
        # Both listen on 8080; each answers at its own address with its own name.
        assert _get(f"http://{pod.status.pod_ip}:8080/") == pod.metadata.name


def test_a_gone_pods_address_is_not_the_next_pods(api: client.ApiClient, namespace: str) -> None:
    """Addresses come round again only after every other one, as host-local IPAM hands them out: an
    address reused at once would meet the host's neighbour entry and connections of the gone pod."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("first", ECHO_SERVER, annotations=ISOLATED, **READY_ON_8080))
    first = wait_until(partial(_ready, core, namespace, "first"), 60, "first Ready").status.pod_ip
    core.delete_namespaced_pod("first", namespace, grace_period_seconds=0)
    wait_until(lambda: gone(core.read_namespaced_pod, "first", namespace), 60, "pod first gone")

    # The node gives the address back (deletes the pod's network namespace) once the pod's process
    # has ended, a moment after the object is gone.
    bridge, host = first.split(".")[2:]
    netns = Path("/run/netns") / f"fl{bridge}-{host}"

    def address_given_back() -> bool:
        return not netns.exists()

    wait_until(address_given_back, 60, f"{netns} deleted")
    core.create_namespaced_pod(namespace, _pod("second", ECHO_SERVER, annotations=ISOLATED, **READY_ON_8080))
    second = wait_until(partial(_ready, core, namespace, "second"), 60, "second Ready").status.pod_ip
    assert second != first, (first, second)
    assert _get(f"http://{second}:8080/") == "second"


def _echo_service(core: client.CoreV1Api, namespace: str) -> client.V1Service:
    core.create_namespaced_pod(
        namespace, _pod("echo-0", ECHO_SERVER, annotations=ISOLATED, labels={"app": "echo"}, **READY_ON_8080)
    )
    service = core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    )
    discovery = client.DiscoveryV1Api(api_client=core.api_client)

    def endpoint_ready() -> bool:
        slices = discovery.list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=echo")
        return any(e.conditions.ready for s in slices.items for e in s.endpoints or [])

    wait_until(endpoint_ready, 60, "a ready endpoint of Service echo")
    return service


def test_service_routes_to_a_pod_by_name_and_cluster_ip(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    service = _echo_service(core, namespace)
    client_script = """
    import json, os, ssl, urllib.request
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    seen = {}
    for host in ["echo", "echo.%s.svc.cluster.local" % os.environ["NS"], os.environ["CLUSTER_IP"]]:
        seen[host] = plain.open("http://%s/" % host, timeout=10).read().decode()
    ca = ssl.create_default_context(cafile="/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    api = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ca))
    version = "https://%s:%s/version" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
    seen["api"] = json.loads(api.open(version, timeout=10).read())["gitVersion"]
    seen["api-by-name"] = json.loads(api.open("https://kubernetes.default.svc/version", timeout=10).read())["major"]
    open("/dev/termination-log", "w").write(json.dumps(seen))
    """
    env = [{"name": "NS", "value": namespace}, {"name": "CLUSTER_IP", "value": service.spec.cluster_ip}]
    core.create_namespaced_pod(namespace, _pod("caller", client_script, annotations=ISOLATED, env=env))
    seen = _result(core, namespace, "caller")
    assert seen["echo"] == "echo-0"
    assert seen[f"echo.{namespace}.svc.cluster.local"] == "echo-0"
    assert seen[service.spec.cluster_ip] == "echo-0"
    # The kubernetes Service reaches the API server, whose certificate names it.
    assert seen["api"].startswith("v1.")
    assert seen["api-by-name"] == "1"


WEBHOOK_SERVER = """
import http.server, json, os, ssl
class Review(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["request"]
        denied = (request["object"]["metadata"].get("labels") or {}).get("deny") == "yes"
        response = {"uid": request["uid"], "allowed": not denied}
        if denied:
            response["status"] = {"code": 403, "message": "refused by " + os.environ["HOSTNAME"]}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8443), Review)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
server.socket = tls.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@pytest.fixture
def webhook_configuration(api: client.ApiClient, namespace: str) -> Iterator[str]:
    name = f"deny-labelled-{namespace}"
    yield name
    try:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(name)
    except ApiException as error:
        if error.status != 404:  # never created when the test failed before that
            raise


def test_api_server_calls_a_webhook_served_by_a_pod_through_its_service(
    api: client.ApiClient, namespace: str, webhook_configuration: str
) -> None:
    core = client.CoreV1Api(api)
    ca = certificates.make_ca("webhook-test-ca")
    serving = certificates.issue(ca, "hook", dns_names=(f"hook.{namespace}.svc",), server=True)
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "hook-tls"},
            "stringData": {"tls.crt": serving.cert_pem.decode(), "tls.key": serving.key_pem.decode()},
        },
    )
    core.create_namespaced_pod(
        namespace,
        _pod(
            "hook-0",
            WEBHOOK_SERVER,
            annotations=ISOLATED,
            labels={"app": "hook"},
            volumes=[{"name": "tls", "secret": {"secretName": "hook-tls"}}],
            volumeMounts=[{"name": "tls", "mountPath": "/tls", "readOnly": True}],
            readinessProbe={"tcpSocket": {"port": 8443}, "periodSeconds": 1},
        ),
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "hook"},
            "spec": {"selector": {"app": "hook"}, "ports": [{"port": 443, "targetPort": 8443}]},
        },
    )
    client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(
        {
            "metadata": {"name": webhook_configuration},
            "webhooks": [
                {
                    "name": "deny-labelled.local-node.test",
                    "clientConfig": {
                        "service": {"namespace": namespace, "name": "hook", "path": "/validate", "port": 443},
                        "caBundle": base64.b64encode(ca.cert_pem).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    # The pod first: under load its start alone can take a while, and a pod that failed must say so
    # here rather than as a webhook that never answered.
    wait_until(partial(_ready_or_failed, core, namespace, "hook-0"), 180, "hook-0 Ready")
    counter = iter(range(1000))
    last_answer: list[str] = []

    def refusal() -> str | None:
        body = {"metadata": {"name": f"denied-{next(counter)}", "labels": {"deny": "yes"}}}
        try:
            core.create_namespaced_config_map(namespace, body)
        except ApiException as error:
            # Until the endpoint controller has published the Ready pod, the API server finds no
            # endpoint and fails closed.
            last_answer[:] = [f"{error.status}: {error.body}"]
            return str(error.body) if "refused by hook-0" in str(error.body) else None
        # The API server loads a new webhook configuration from its own watch, a moment after it is
        # created: until then nothing calls the webhook. The refusal must still come within the wait.
        last_answer[:] = ["admitted"]
        core.delete_namespaced_config_map(body["metadata"]["name"], namespace)
        return None

    try:
        message = wait_until(refusal, 120, "the webhook pod's refusal")
    except AssertionError as error:
        pod = core.read_namespaced_pod("hook-0", namespace).status
        raise AssertionError(f"{error}; last answer: {last_answer}; pod: {pod.phase} {pod.conditions}") from None
    assert "admission webhook" in message and "refused by hook-0" in message
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "allowed"}})


def test_persistent_volume_claim_is_provisioned_and_outlives_its_pod(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
        },
    )
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mounts = [{"name": "data", "mountPath": "/data"}]
    writer = """
    import json
    open("/data/note.txt", "w").write("written by the first pod")
    open("/dev/termination-log", "w").write(json.dumps({"wrote": True}))
    """
    core.create_namespaced_pod(namespace, _pod("writer", writer, volumes=volumes, volumeMounts=mounts))
    assert _result(core, namespace, "writer") == {"wrote": True}
    claim = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "local-path"  # the default class, set by admission
    volume_name = claim.spec.volume_name
    core.delete_namespaced_pod("writer", namespace, grace_period_seconds=0)
    reader = """
    import json
    open("/dev/termination-log", "w").write(json.dumps({"read": open("/data/note.txt").read()}))
    """
    core.create_namespaced_pod(
        namespace, _pod("reader", reader, annotations=ISOLATED, volumes=volumes, volumeMounts=mounts)
    )
    assert _result(core, namespace, "reader") == {"read": "written by the first pod"}
    core.delete_namespaced_pod("reader", namespace, grace_period_seconds=0)
    wait_until(
        lambda: not core.list_namespaced_pod(namespace, field_selector="metadata.name=reader").items, 60, "reader gone"
    )
    core.delete_namespaced_persistent_volume_claim("data", namespace)

    def volume_deleted() -> bool:
        try:
            core.read_persistent_volume(volume_name)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until(volume_deleted, 60, f"released {volume_name} deleted by its reclaim policy")


def _events(core: client.CoreV1Api, namespace: str, pod: str, reason: str) -> list[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    return [e.message for e in events if e.reason == reason]


def test_failing_liveness_probe_restarts_the_container(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    liveness = {"exec": {"command": ["sh", "-c", "test -e /no/such/file"]}, "periodSeconds": 1, "failureThreshold": 2}
    core.create_namespaced_pod(
        namespace, _pod("sleeper", "import time; time.sleep(600)", restart="Always", livenessProbe=liveness)
    )

    def restarted() -> int:
        statuses = core.read_namespaced_pod("sleeper", namespace).status.container_statuses or []
        return sum(s.restart_count for s in statuses)

    wait_until(restarted, 60, "the container restarted")
    assert any("failed liveness probe" in m for m in _events(core, namespace, "sleeper", "Killing"))
    assert any("Liveness probe failed" in m for m in _events(core, namespace, "sleeper", "Unhealthy"))


def test_readiness_probe_gates_the_ready_condition(api: client.ApiClient, namespace: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(api)
    gate = tmp_path / "gate"
    gate.mkdir()
    core.create_namespaced_pod(
        namespace,
        _pod(
            "gated",
            "import time; time.sleep(600)",
            restart="Always",
            volumes=[{"name": "gate", "hostPath": {"path": str(gate), "type": "Directory"}}],
            volumeMounts=[{"name": "gate", "mountPath": "/gate"}],
            readinessProbe={"exec": {"command": ["test", "-e", "/gate/open"]}, "periodSeconds": 1},
        ),
    )
    wait_until(lambda: _events(core, namespace, "gated", "Unhealthy"), 60, "a failed readiness probe")
    pod = core.read_namespaced_pod("gated", namespace)
    assert pod.status.phase == "Running"
    assert _condition(core, namespace, "gated", "Ready") == "False"
    (gate / "open").touch()
    wait_until(lambda: _ready(core, namespace, "gated"), 30, "Ready once the probe passes")
    (gate / "open").unlink()
    wait_until(lambda: _condition(core, namespace, "gated", "Ready") == "False", 30, "not Ready once it fails")


def test_isolated_pod_runs_as_its_user_on_a_read_only_root(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    script = """
    import errno, json, os
    seen = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups())}
    for path in ("/tmp/written-by-pod", "/scratch/written-by-pod"):
        try:
            open(path, "w").write("x")
            seen[path] = "written"
        except OSError as error:
            seen[path] = errno.errorcode[error.errno]
    seen["token"] = bool(open("/var/run/secrets/kubernetes.io/serviceaccount/token").read())
    open("/dev/termination-log", "w").write(json.dumps(seen))
    """
    core.create_namespaced_pod(
        namespace,
        _pod(
            "restricted",
            script,
            annotations=ISOLATED,
            security={"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 2000, "runAsNonRoot": True},
            volumes=[{"name": "scratch", "emptyDir": {}}],
            volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
            securityContext={"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        ),
    )
    seen = _result(core, namespace, "restricted")
    assert (seen["uid"], seen["gid"], seen["groups"]) == (10001, 10001, [2000])
    # /tmp is writable by anyone: only the read-only root refuses the write.
    assert seen["/tmp/written-by-pod"] == "EROFS"
    assert not Path("/tmp/written-by-pod").exists()
    assert seen["/scratch/written-by-pod"] == "written"
    assert seen["token"] is True


def test_run_as_non_root_without_a_user_is_refused(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace, _pod("rootish", "print('never runs')", annotations=ISOLATED, security={"runAsNonRoot": True})
    )

    def refused() -> str | None:
        statuses = core.read_namespaced_pod("rootish", namespace).status.container_statuses or []
        terminated = statuses[0].state.terminated if statuses else None
        return terminated.reason if terminated else None

    assert wait_until(refused, 60, "the container refused") == "CreateContainerConfigError"
    message = core.read_namespaced_pod("rootish", namespace).status.container_statuses[0].state.terminated.message
    assert "runAsNonRoot" in message


MLFLOW_CLIENT = """
import http.client, json, os, time, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(method, path, body=None, data=None):
    data = json.dumps(body).encode() if body is not None else data
    request = urllib.request.Request(os.environ["TRACKING_URI"] + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    # As any client of a Service just after a rollout: a connection the old endpoint drops is tried again.
    for attempt in range(30):
        try:
            return opener.open(request, timeout=60).read()
        except urllib.error.HTTPError:
            raise
        except (OSError, http.client.HTTPException):
            if attempt == 29:
                raise
            time.sleep(2)
seen = {}
if os.environ.get("RUN_ID"):
    run = json.loads(call("GET", "/api/2.0/mlflow/runs/get?run_id=" + os.environ["RUN_ID"]))["run"]
    seen["param"] = {p["key"]: p["value"] for p in run["data"]["params"]}["where"]
    stored = run["info"]["artifact_uri"].split("mlflow-artifacts:", 1)[1].strip("/")
    seen["artifact"] = call("GET", "/api/2.0/mlflow-artifacts/artifacts/" + stored + "/note.txt").decode()
else:
    experiment = json.loads(call("POST", "/api/2.0/mlflow/experiments/create", {"name": "on-a-claim"}))
    run = json.loads(call("POST", "/api/2.0/mlflow/runs/create", experiment))["run"]["info"]
    call("POST", "/api/2.0/mlflow/runs/log-parameter", {"run_id": run["run_id"], "key": "where", "value": "pvc"})
    stored = run["artifact_uri"].split("mlflow-artifacts:", 1)[1].strip("/")
    call("PUT", "/api/2.0/mlflow-artifacts/artifacts/" + stored + "/note.txt", data=b"kept")
    seen["run_id"] = run["run_id"]
open("/dev/termination-log", "w").write(json.dumps(seen))
"""


def _available(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    status = apps.read_namespaced_deployment_status(name, namespace).status
    return bool(status.available_replicas == 1 and status.updated_replicas == 1 and not status.unavailable_replicas)


# Two MLflow server starts: minutes each on a loaded two-core machine.
@pytest.mark.timeout(1500)
def test_chart_mlflow_server_keeps_its_runs_on_a_claim_across_pods(
    api: client.ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    """The chart's in-cluster MLflow (as the chart renders it) on isolated pods: its restricted security
    context, probes, PersistentVolumeClaim and Service, reached by name from another pod."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": ISOLATED}})
    rendered = helm_template(
        helm(),
        CHART,
        release="ml",
        namespace=namespace,
        values=("mlflow.server.enabled=true", "mlflow.server.persistence.size=64Mi"),
        extra=("--show-only", "templates/mlflow.yaml"),
    )
    kubectl("apply", "-n", namespace, "-f", "-", input=rendered)
    name = "ml-feast-lineage-operator-mlflow"
    wait_until(lambda: _available(apps, namespace, name), 420, "the MLflow Deployment available")
    server = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/component=mlflow").items[0]
    assert server.status.pod_ip.startswith("10.244.")
    tracking = [{"name": "TRACKING_URI", "value": f"http://{name}.{namespace}.svc:5000"}]
    core.create_namespaced_pod(namespace, _pod("log-run", MLFLOW_CLIENT, env=tracking))
    run_id = _result(core, namespace, "log-run", timeout=300)["run_id"]

    # A new server pod, the same claim: the run and its artifact are still there.
    core.delete_namespaced_pod(server.metadata.name, namespace, grace_period_seconds=2)

    def replaced() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/component=mlflow").items
        return any(p.metadata.uid != server.metadata.uid for p in pods) and _available(apps, namespace, name)

    wait_until(replaced, 420, "a new MLflow pod available")
    reader_env = [*tracking, {"name": "RUN_ID", "value": run_id}]
    core.create_namespaced_pod(namespace, _pod("read-run", MLFLOW_CLIENT, env=reader_env))
    assert _result(core, namespace, "read-run", timeout=300) == {"param": "pvc", "artifact": "kept"}
