"""The Helm chart: generated parts in sync, RBAC and webhook configuration as the code says, values checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from feast_lineage.api import generate_crds
from feast_lineage.cli import _api_timeouts, _webhook_settings, build_parser
from feast_lineage.controller.settings import ApiTimeouts, WebhookSettings
from feast_lineage.domain.webhook_config import (
    INJECTION_WEBHOOK,
    injection_webhook_configuration,
    provenance_webhook_configuration,
    validation_webhook_configuration,
)
from feast_lineage.injection.service import MUTATE_PODS_PATH, MUTATE_RESOURCES_PATH, VALIDATE_RESOURCES_PATH
from feast_lineage.install import rbac
from feast_lineage.install.chart import RULES_TEMPLATE, diff_generated, generated_files, write_generated
from feast_lineage.install.manifest import HelmError, install_manifest
from tests.chart_helpers import (
    CHART,
    CI_VALUES,
    MANIFEST,
    NAMESPACE,
    RELEASE,
    Obj,
    documents,
    helm,
    is_hook,
    of_kind,
    one,
    render,
)

FULLNAME = f"{RELEASE}-feast-lineage-operator"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def ci_id(path: Path) -> str:
    return path.stem


# -- generated parts ---------------------------------------------------------------------------


def test_generated_files_are_in_sync() -> None:
    assert diff_generated(CHART) == [], "run `feast-lineage chart`"


def test_a_changed_rule_or_crd_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    (copy / RULES_TEMPLATE).write_text(
        (copy / RULES_TEMPLATE).read_text().replace('verbs: ["get"]', 'verbs: ["get", "list"]', 1)
    )
    crd = copy / "templates" / "crds" / "featurelineage.io_materializationjobs.yaml"
    crd.unlink()
    assert sorted(diff_generated(copy)) == [RULES_TEMPLATE, "templates/crds/featurelineage.io_materializationjobs.yaml"]
    write_generated(copy)
    assert diff_generated(copy) == []


def test_chart_crds_are_those_of_crds_dir() -> None:
    rendered = {obj["metadata"]["name"]: obj for obj in of_kind(render(), "CustomResourceDefinition")}
    expected = {doc["metadata"]["name"]: doc for text in generate_crds().values() for doc in documents(text)}
    assert rendered.keys() == expected.keys()
    for name, crd in rendered.items():
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd == expected[name]


def test_crds_switch_and_keep() -> None:
    assert of_kind(render("crds.enabled=false"), "CustomResourceDefinition") == []
    for crd in of_kind(render("crds.keep=false"), "CustomResourceDefinition"):
        assert "annotations" not in crd["metadata"]


def test_rules_template_comments_every_rule() -> None:
    text = generated_files()[RULES_TEMPLATE]
    for rules in rbac.RULE_SETS.values():
        for rule in rules:
            assert rule.why.split()[0] in text
            assert "*" not in rule.verbs + rule.resources + rule.api_groups


# -- lint and values ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: "defaults" if p is None else ci_id(p))
def test_helm_lint(values: Path | None) -> None:
    argv = [str(helm()), "lint", str(CHART), "--strict", "--kube-version", "1.36.3"]
    if values is not None:
        argv += ["--values", str(values)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("leaderElection.enabled=false,replicaCount=2", "at '/replicaCount': maximum: got 2, want 1"),
        ("leaderElection.retryPeriodSeconds=0", "at '/leaderElection/retryPeriodSeconds': minimum: got 0, want 1"),
        ("webhook.failurePolicy=Never", "at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'"),
        ("watchNamespaces[0]=Team_A", "at '/watchNamespaces/0': 'Team_A' does not match pattern"),
        ("crd.enabled=false", "additional properties 'crd' not allowed"),
        ("webhook.timeoutSeconds=60", "at '/webhook/timeoutSeconds': maximum: got 60, want 30"),
        ("metrics.port=80", "at '/metrics/port': minimum: got 80, want 1,024"),
        ("auditRetrySeconds=0", "at '/auditRetrySeconds': minimum: got 0, want 1"),
        ("kubernetesApi.readTimeoutSeconds=0", "at '/kubernetesApi/readTimeoutSeconds': minimum: got 0, want 1"),
        ("kubernetesApi.connectTimeoutSeconds=600", "at '/kubernetesApi/connectTimeoutSeconds': maximum: got 600"),
        ("webhook.url=http://operator:9443", "at '/webhook/url': 'http://operator:9443' does not match pattern"),
        ("image.digest=latest", "at '/image/digest': 'latest' does not match pattern"),
        ("mlflow.trackingUri=mlflow:5000", "at '/mlflow/trackingUri': 'mlflow:5000' does not match pattern"),
        ("webhook.certManager.issuerRef.kind=Vault", "value must be one of 'Issuer', 'ClusterIssuer'"),
        ("podDisruptionBudget.minAvailable=half", "at '/podDisruptionBudget/minAvailable'"),
        ("logLevel=verbose", "at '/logLevel': value must be one of 'debug', 'info', 'warning'"),
        ("webhook.drainSeconds=-1", "at '/webhook/drainSeconds': minimum: got -1, want 0"),
    ],
)
def test_bad_values_are_rejected_with_a_message(values: str, message: str) -> None:
    with pytest.raises(HelmError) as error:
        render(values)
    assert "values don't meet the specifications of the schema" in str(error.value)
    assert message in str(error.value), str(error.value)


def test_a_webhook_url_with_cert_manager_is_refused_with_the_reason() -> None:
    with pytest.raises(HelmError) as error:
        render("webhook.url=https://10.0.0.1:9443", "webhook.certManager.enabled=true")
    assert "webhook.url cannot be combined with webhook.certManager.enabled" in str(error.value)


def test_values_schema_covers_every_value() -> None:
    """Every key of values.yaml is declared in the schema (which rejects undeclared ones)."""
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], declared: dict[str, Any], path: str) -> None:
        for key, value in node.items():
            assert key in declared.get("properties", {}), f"{path}{key} is not in values.schema.json"
            sub = declared["properties"][key]
            if isinstance(value, dict) and sub.get("additionalProperties") is False:
                walk(value, sub, f"{path}{key}.")

    walk(values, schema, "")


# -- RBAC --------------------------------------------------------------------------------------


def rbac_params(**overrides: Any) -> rbac.RbacParams:
    fields: dict[str, Any] = {
        "fullname": FULLNAME,
        "namespace": NAMESPACE,
        "service_account": FULLNAME,
        "webhook_configuration": f"{FULLNAME}-injection",
        "provenance_configuration": f"{FULLNAME}-provenance",
        "validation_configuration": f"{FULLNAME}-validation",
        "cert_secret": f"{FULLNAME}-webhook-cert",
        "lease": FULLNAME,
    }
    fields.update(overrides)
    return rbac.RbacParams(**fields)


def comparable(obj: Obj) -> Obj:
    meta = obj["metadata"]
    keep: Obj = {key: obj[key] for key in ("kind", "rules", "roleRef", "subjects") if key in obj}
    return {**keep, "name": meta["name"], "namespace": meta.get("namespace")}


RBAC_CASES = {
    "cluster-wide": ((), rbac_params()),
    "namespaced": (("watchNamespaces={team-a,team-b}",), rbac_params(watch_namespaces=("team-a", "team-b"))),
    "cert-manager": (("webhook.certManager.enabled=true",), rbac_params(operator_certificates=False)),
    "no-webhook": (("webhook.enabled=false", "cleanup.enabled=false"), rbac_params(webhook=False, cleanup=False)),
    "one-replica": (
        ("replicaCount=1", "leaderElection.enabled=false"),
        rbac_params(leader_election=False),
    ),
    "namespaced-cert-manager": (
        ("watchNamespaces={ml}", "webhook.certManager.enabled=true"),
        rbac_params(watch_namespaces=("ml",), operator_certificates=False),
    ),
}


@pytest.mark.parametrize("case", RBAC_CASES)
def test_chart_rbac_is_the_rbac_module(case: str) -> None:
    values, params = RBAC_CASES[case]
    rendered = sorted(
        (comparable(obj) for obj in of_kind(render(*values), *RBAC_KINDS)),
        key=lambda o: (o["kind"], o["namespace"] or "", o["name"]),
    )
    expected = sorted(
        (comparable(obj) for obj in rbac.rbac_objects(params)),
        key=lambda o: (o["kind"], o["namespace"] or "", o["name"]),
    )
    assert rendered == expected


def test_namespaced_mode_grants_nothing_namespaced_cluster_wide() -> None:
    objects = render("watchNamespaces={team-a,team-b}")
    cluster_role = one(objects, "ClusterRole", FULLNAME)
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "namespaces",
        "subjectaccessreviews",
    }
    namespaces_rule = next(rule for rule in cluster_role["rules"] if rule["resources"] == ["namespaces"])
    assert namespaces_rule["resourceNames"] == ["team-a", "team-b"]
    roles = [obj for obj in of_kind(objects, "Role") if obj["metadata"]["name"] == FULLNAME]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    deployment = one(objects, "Deployment", FULLNAME)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == ["--namespace=team-a", "--namespace=team-b"]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: "defaults" if p is None else ci_id(p))
def test_no_wildcards_and_no_secret_listing(values: Path | None) -> None:
    for role in of_kind(render(values_file=values), "ClusterRole", "Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(key, [])), (role["metadata"]["name"], rule)
            if "secrets" in rule["resources"]:
                assert not {"list", "watch"} & set(rule["verbs"]), rule


# Which client call needs which verb on which resource; a test below finds every such call in the code.
CALL = re.compile(
    r"\.(read|list|create|replace|patch|delete)_(namespaced_)?([a-z_]+?)(_status)?(_for_all_namespaces)?\b"
)
VERBS = {"read": "get", "list": "list", "create": "create", "replace": "update", "patch": "patch", "delete": "delete"}
RESOURCES = {
    "config_map": "configmaps",
    "secret": "secrets",
    "job": "jobs",
    "pod": "pods",
    "event": "events",
    "lease": "leases",
    "namespace": "namespaces",
    "mutating_webhook_configuration": "mutatingwebhookconfigurations",
    "validating_webhook_configuration": "validatingwebhookconfigurations",
}
OPERATOR_CODE = Path(rbac.__file__).resolve().parents[1]
# Calls the code has but no install makes: the operator names no validating configuration yet
# (InjectionService passes none to patch_ca_bundles). Remove an entry when it gets its rule.
NOT_YET_MADE = {
    ("injection/tls.py", "validatingwebhookconfigurations", "get"),
    ("injection/tls.py", "validatingwebhookconfigurations", "patch"),
}


def granted(params: rbac.RbacParams) -> set[tuple[str, str]]:
    rules = [
        *rbac.policy_rules(rbac.WATCHED_RULES, params),
        *rbac.policy_rules(rbac.CLUSTER_RULES, params),
        *rbac.policy_rules(rbac.OWN_NAMESPACE_RULES, params),
    ]
    return {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}


def test_every_client_call_of_the_operator_is_granted() -> None:
    """A new Kubernetes call in the operator's code fails here until the rule it needs is added."""
    allowed = granted(rbac_params())
    calls: set[tuple[str, str, str]] = set()
    for path in OPERATOR_CODE.rglob("*.py"):
        relative = path.relative_to(OPERATOR_CODE).as_posix()
        if relative.startswith(("devcluster/", "runner/", "install/")):
            continue  # the local node, the runner pod (no token) and install tooling are not the operator
        for match in CALL.finditer(path.read_text()):
            action, _, kind, status, _ = match.groups()
            if kind == "custom_object":
                continue  # both kinds are granted together; the cluster tests exercise them
            resource = RESOURCES.get(kind)
            if resource is None:
                continue  # not a Kubernetes client method (e.g. read_text)
            calls.add((relative, resource + ("/status" if status else ""), VERBS[action]))
    assert calls, "the scan found no client call at all"
    missing = sorted(call for call in calls - NOT_YET_MADE if (call[1], call[2]) not in allowed)
    assert missing == []
    assert calls >= NOT_YET_MADE, "an exception above is stale"


# -- webhook configuration -----------------------------------------------------------------------


def chart_webhook(*values: str, kind: str = "MutatingWebhookConfiguration", suffix: str = "-injection") -> Obj:
    (configuration,) = [
        obj for obj in render(*values) if obj["kind"] == kind and obj["metadata"]["name"].endswith(suffix)
    ]
    return configuration


def assert_same_configuration(chart: Obj, domain: Obj) -> None:
    assert chart["metadata"]["name"] == domain["metadata"]["name"]
    assert domain["metadata"]["labels"].items() <= chart["metadata"]["labels"].items()
    assert chart["webhooks"] == domain["webhooks"]


def test_two_replicas_elect_a_leader_with_a_lease_and_keep_one_through_disruptions() -> None:
    objects = render()
    deployment = one(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["replicas"] == 2
    # The Lease, not the rollout, keeps two pods from reconciling at once: the webhook serves throughout.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    args = operator_container(objects)["args"]
    assert f"--leader-election-lease={NAMESPACE}/{FULLNAME}" in args
    assert {"--leader-election-lease-seconds=15", "--leader-election-renew-seconds=10"} <= set(args)
    env = {e["name"]: e for e in operator_container(objects)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    lease_rules = [
        rule
        for role in of_kind(objects, "Role")
        if role["metadata"]["name"] == f"{FULLNAME}-own-namespace"
        for rule in role["rules"]
        if rule["resources"] == ["leases"]
    ]
    assert {(tuple(r["verbs"]), tuple(r.get("resourceNames", ()))) for r in lease_rules} == {
        (("create",), ()),
        (("get", "update"), (FULLNAME,)),
    }
    cleanup_args = one(objects, "Job", f"{FULLNAME}-cleanup")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--delete-lease={FULLNAME}" in cleanup_args


def test_one_replica_without_leader_election_recreates_and_has_no_budget() -> None:
    objects = render("replicaCount=1", "leaderElection.enabled=false")
    deployment = one(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in operator_container(objects)["args"] if a.startswith("--leader-election")]
    assert not of_kind(objects, "PodDisruptionBudget")  # it could only block node drains
    assert not of_kind(render("replicaCount=1"), "PodDisruptionBudget")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ("leaderElection.renewDeadlineSeconds=15",),
            "leaderElection.renewDeadlineSeconds must be shorter than leaderElection.leaseDurationSeconds",
        ),
        (("leaderElection.retryPeriodSeconds=9",), "must exceed 1.2 times leaderElection.retryPeriodSeconds"),
    ],
)
def test_leader_election_timing_that_could_let_two_lead_is_refused(values: tuple[str, ...], message: str) -> None:
    with pytest.raises(HelmError) as error:
        render(*values)
    assert message in str(error.value)


def test_webhook_configuration_through_the_service_is_the_domain_one() -> None:
    service = {
        "service": {
            "name": f"{FULLNAME}-webhook",
            "namespace": NAMESPACE,
            "path": MUTATE_PODS_PATH,
            "port": 443,
        }
    }
    expected = injection_webhook_configuration(service, name=f"{FULLNAME}-injection")
    configuration = chart_webhook()
    assert_same_configuration(configuration, expected)
    assert configuration["webhooks"][0]["name"] == INJECTION_WEBHOOK
    assert "annotations" not in configuration["metadata"]


def test_resource_webhooks_are_the_domain_ones() -> None:
    def service(path: str) -> Obj:
        return {"service": {"name": f"{FULLNAME}-webhook", "namespace": NAMESPACE, "path": path, "port": 443}}

    operator = f"system:serviceaccount:{NAMESPACE}:{FULLNAME}"
    assert_same_configuration(
        chart_webhook(kind="ValidatingWebhookConfiguration", suffix="-validation"),
        validation_webhook_configuration(service(VALIDATE_RESOURCES_PATH), operator, name=f"{FULLNAME}-validation"),
    )
    assert_same_configuration(
        chart_webhook(suffix="-provenance"),
        provenance_webhook_configuration(service(MUTATE_RESOURCES_PATH), name=f"{FULLNAME}-provenance"),
    )


def test_webhook_configuration_at_a_url_namespaced_and_failing_closed() -> None:
    expected = injection_webhook_configuration(
        {"url": f"https://127.0.0.1:9443{MUTATE_PODS_PATH}"},
        name=f"{FULLNAME}-injection",
        failure_policy="Fail",
        timeout_seconds=10,
        included_namespaces=("team-a",),
    )
    configuration = chart_webhook(
        "webhook.url=https://127.0.0.1:9443",
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=10",
        "watchNamespaces={team-a}",
    )
    assert_same_configuration(configuration, expected)


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: "defaults" if p is None else ci_id(p))
def test_no_ca_bundle_is_ever_rendered(values: Path | None) -> None:
    configurations = [
        obj
        for obj in render(values_file=values)
        if obj["kind"] in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    ]
    for configuration in configurations:
        for webhook in configuration["webhooks"]:
            assert "caBundle" not in webhook["clientConfig"], configuration["metadata"]["name"]


def test_cert_manager_certificate_and_ca_injection() -> None:
    objects = render("webhook.certManager.enabled=true")
    certificate = one(objects, "Certificate")
    assert certificate["spec"]["secretName"] == f"{FULLNAME}-webhook-tls"
    assert certificate["spec"]["dnsNames"][0] == f"{FULLNAME}-webhook.{NAMESPACE}.svc"
    assert certificate["spec"]["issuerRef"] == {
        "name": f"{FULLNAME}-selfsigned",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
    configurations = of_kind(objects, "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    assert len(configurations) == 3
    for configuration in configurations:
        assert configuration["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
        }
    container = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]["containers"][0]
    assert "--webhook-cert-dir=/etc/feast-lineage/webhook-tls" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--webhook-cert-secret")]
    with_issuer = render("webhook.certManager.enabled=true", "webhook.certManager.issuerRef.name=corp-ca")
    assert of_kind(with_issuer, "Issuer") == []
    assert one(with_issuer, "Certificate")["spec"]["issuerRef"]["name"] == "corp-ca"


# -- the operator's pod --------------------------------------------------------------------------


def operator_container(objects: list[Obj]) -> Obj:
    container: Obj = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]["containers"][0]
    return container


def test_operator_runs_restricted_with_probes_on_its_liveness_port() -> None:
    objects = render("livenessPort=9100")
    pod = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    container = operator_container(objects)
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["command"] == ["feast-lineage"]
    assert container["args"][0] == "run"
    assert "--liveness-port=9100" in container["args"]
    healthz = next(port for port in container["ports"] if port["name"] == "healthz")
    assert healthz["containerPort"] == 9100
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["resources"]["limits"]["memory"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_operator_resync_and_audit_retry_come_from_values() -> None:
    args = operator_container(render())["args"]
    assert "--resync-seconds=60" in args and "--audit-retry-seconds=30" in args
    args = operator_container(render("resyncSeconds=3", "auditRetrySeconds=4"))["args"]
    assert "--resync-seconds=3" in args and "--audit-retry-seconds=4" in args


def test_operator_log_level_comes_from_values() -> None:
    assert "--log-level=info" in operator_container(render())["args"]
    assert "--log-level=debug" in operator_container(render("logLevel=debug"))["args"]


def test_operator_kubernetes_api_timeouts_come_from_values() -> None:
    args = operator_container(render())["args"]
    # The chart's defaults are the operator's own.
    assert f"--api-connect-timeout-seconds={ApiTimeouts.connect_seconds:g}" in args
    assert f"--api-read-timeout-seconds={ApiTimeouts.read_seconds:g}" in args
    args = operator_container(render("kubernetesApi.connectTimeoutSeconds=3", "kubernetesApi.readTimeoutSeconds=90"))
    assert "--api-connect-timeout-seconds=3" in args["args"] and "--api-read-timeout-seconds=90" in args["args"]


def test_the_operator_command_accepts_the_arguments_the_chart_gives_it() -> None:
    container = operator_container(render("kubernetesApi.readTimeoutSeconds=45"))
    assert container["command"] == ["feast-lineage"]
    args = build_parser().parse_args(container["args"])  # exits (SystemExit) on an argument it does not know
    assert _api_timeouts(args) == ApiTimeouts(read_seconds=45)


def test_the_termination_grace_period_is_the_webhook_drain_and_30_seconds_more() -> None:
    objects = render()
    pod = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    webhook = _webhook_settings(build_parser().parse_args(operator_container(objects)["args"]))
    assert webhook is not None and webhook.drain_seconds == WebhookSettings.drain_seconds  # the operator's default
    assert pod["terminationGracePeriodSeconds"] == WebhookSettings.drain_seconds + 30
    objects = render("webhook.drainSeconds=12")
    pod = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    webhook = _webhook_settings(build_parser().parse_args(operator_container(objects)["args"]))
    assert webhook is not None and webhook.drain_seconds == 12
    assert pod["terminationGracePeriodSeconds"] == 42
    for refused in (-1, float("nan"), float("inf"), 301):
        with pytest.raises(ValueError, match="drain period must be 0 to 300 seconds"):
            WebhookSettings(drain_seconds=refused)
    # Without the webhook there is nothing to drain: Kubernetes' own grace period.
    objects = render("webhook.enabled=false")
    assert "terminationGracePeriodSeconds" not in one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]


def test_operator_certificate_names_the_service_and_the_url_host() -> None:
    args = operator_container(render("webhook.url=https://10.1.2.3:9443"))["args"]
    assert f"--webhook-cert-secret={NAMESPACE}/{FULLNAME}-webhook-cert" in args
    assert f"--webhook-dns-name={FULLNAME}-webhook.{NAMESPACE}.svc" in args
    assert "--webhook-ip=10.1.2.3" in args
    assert f"--webhook-configuration={FULLNAME}-injection" in args
    args = operator_container(render("webhook.url=https://operator.example.internal:9443"))["args"]
    assert "--webhook-dns-name=operator.example.internal" in args


def test_runner_service_accounts_per_watched_namespace() -> None:
    objects = render("watchNamespaces={team-a,team-b}", "runner.serviceAccount.namespaces={team-b,ml}")
    accounts = [sa for sa in of_kind(objects, "ServiceAccount") if sa["metadata"]["name"] == "feast-lineage-runner"]
    assert sorted(sa["metadata"]["namespace"] for sa in accounts) == ["ml", "team-a", "team-b"]
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts)
    bound = {
        subject["name"]
        for binding in of_kind(objects, "RoleBinding", "ClusterRoleBinding")
        for subject in binding["subjects"]
    }
    assert "feast-lineage-runner" not in bound
    assert of_kind(render(), "ServiceAccount")[0]["metadata"]["name"] == FULLNAME  # none cluster-wide by default


def test_optional_objects_are_off_by_default() -> None:
    kinds = {obj["kind"] for obj in render()}
    assert not kinds & {"ServiceMonitor", "PersistentVolumeClaim", "Certificate"}
    objects = render("metrics.serviceMonitor.enabled=true")
    monitor = one(objects, "ServiceMonitor")
    metrics_service = one(objects, "Service", f"{FULLNAME}-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics_service["metadata"]["labels"].items()
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_mlflow_server_sqlite_on_a_claim_with_allowed_hosts() -> None:
    objects = render("mlflow.server.enabled=true", "mlflow.server.allowedHosts={mlflow.example.internal}")
    name = f"{FULLNAME}-mlflow"
    deployment = one(objects, "Deployment", name)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlflow"]
    assert "--serve-artifacts" in container["args"]
    assert "--backend-store-uri=sqlite:////mlflow/mlflow.db" in container["args"]
    hosts = next(a for a in container["args"] if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert f"{name}.{NAMESPACE}.svc:5000" in hosts and "mlflow.example.internal" in hosts
    assert "localhost:*" in hosts and not [host for host in hosts if host in ("*", "")]
    claim = one(objects, "PersistentVolumeClaim", name)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}} in volumes
    assert f"--mlflow-tracking-uri=http://{name}.{NAMESPACE}.svc:5000" in operator_container(objects)["args"]
    pinned = render("mlflow.server.enabled=true", "mlflow.trackingUri=https://mlflow.example.internal")
    assert "--mlflow-tracking-uri=https://mlflow.example.internal" in operator_container(pinned)["args"]
    assert of_kind(render(), "PersistentVolumeClaim") == []


def test_hooks_cleanup_and_test() -> None:
    objects = render("watchNamespaces={team-a}")
    hooks = [obj for obj in objects if is_hook(obj)]
    cleanup = one(hooks, "Job")
    assert cleanup["metadata"]["annotations"]["helm.sh/hook"] == "post-delete"
    pod = cleanup["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{FULLNAME}-cleanup"
    args = pod["containers"][0]["args"]
    assert "--namespace=team-a" in args
    selector = next(a for a in args if a.startswith("--operator-selector=")).split("=", 1)[1]
    deployment = one(objects, "Deployment", FULLNAME)
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert dict(item.split("=") for item in selector.split(",")) == labels
    assert not labels.items() <= cleanup["spec"]["template"]["metadata"]["labels"].items()
    for obj in hooks:
        if obj["kind"] != "Pod":
            assert obj["metadata"]["annotations"]["helm.sh/hook"] == "post-delete", obj["metadata"]["name"]
    test_pod = one(hooks, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert not [obj for obj in render("cleanup.enabled=false", "tests.enabled=false") if is_hook(obj)]


# -- the plain manifest --------------------------------------------------------------------------


def test_install_manifest_is_the_chart_rendered() -> None:
    assert MANIFEST.read_text() == install_manifest(helm(), CHART), (
        "run `feast-lineage chart --manifest deploy/feast-lineage-operator.yaml`"
    )
    objects = documents(MANIFEST.read_text())
    assert objects[0]["kind"] == "Namespace"
    assert not [obj for obj in objects if is_hook(obj)]
    assert not of_kind(objects, "CustomResourceDefinition")
