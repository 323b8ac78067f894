"""What the webhook injects into a pod: pure decisions, applied with a real JSON patch implementation."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
import yaml

from feast_lineage.api import FeatureStoreProjectSpec
from feast_lineage.domain import labels
from feast_lineage.domain.injection import (
    CLIENT_VOLUME,
    FS_YAML_ENV,
    RUN_CONTEXT_ENV,
    InjectionTarget,
    decide_injection,
)
from feast_lineage.domain.store_config import CLIENT_YAML, CLIENT_YAML_NO_AUTOLOG, client_config_data
from feast_lineage.domain.webhook_config import injection_webhook_configuration


def _spec(**overrides: Any) -> FeatureStoreProjectSpec:
    spec: dict[str, Any] = {
        "project": "driver_stats",
        "repo": {"configMap": {"name": "repo"}},
        "featureStore": {
            "registry": {"path": "/feast-data/registry.db"},
            "onlineStore": {"type": "redis", "settings": {"connection_string": "${REDIS_URL}", "home": "$HOME"}},
            "secretEnv": [{"name": "REDIS_URL", "secretKeyRef": {"name": "redis", "key": "url"}}],
        },
        "mlflow": {
            "trackingUri": "http://mlflow:5000",
            "credentials": {"secretName": "mlflow-auth", "tokenKey": "token"},
            "requestTimeoutSeconds": 7,
            "maxRetries": 0,
        },
        "runner": {
            "volumes": [
                {"name": "feast-data", "hostPath": {"path": "/var/lib/feast"}},
                {"name": "claims", "persistentVolumeClaim": {"claimName": "store"}},
            ],
            "volumeMounts": [
                {"name": "feast-data", "mountPath": "/feast-data"},
                {"name": "claims", "mountPath": "/claims"},
            ],
        },
        "injection": {"volumes": ["feast-data", "claims"], "experimentName": "drivers"},
    }
    spec.update(overrides)
    return FeatureStoreProjectSpec.model_validate(spec)


def _target(name: str = "drivers", namespace: str = "ml", **spec: Any) -> InjectionTarget:
    return InjectionTarget(
        namespace=namespace,
        name=name,
        spec=_spec(**spec),
        client_config_map=f"{name}-client-config",
        revision="configmap/repo@abc",
        commit=None,
        apply_run_id="run-123",
    )


def _pod(
    label: str = "drivers", env: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "train-",
            "labels": {labels.LABEL_INJECT: label},
            "annotations": dict(annotations or {}),
            "ownerReferences": [{"kind": "Job", "name": "train", "controller": True, "apiVersion": "batch/v1"}],
        },
        "spec": {
            "containers": [{"name": "train", "image": "trainer:1", "env": env or []}],
            "initContainers": [{"name": "prepare", "image": "prep:1"}],
        },
    }


def _applied(pod: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(pod), patch)
    return result


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env") or []}


def test_injects_mlflow_and_feast_client_config_by_reference() -> None:
    decision = decide_injection(_pod(), "ml", [_target()])
    assert decision.skipped is None and decision.project == "drivers"
    pod = _applied(_pod(), decision.patch)
    env = _env(pod["spec"]["containers"][0])
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"]["value"] == "7"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]["value"] == "0"
    assert env["MLFLOW_EXPERIMENT_NAME"]["value"] == "drivers"
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "mlflow-auth", "key": "token"}}
    assert env["FEAST_LINEAGE_SECRET_REDIS_URL"]["valueFrom"] == {"secretKeyRef": {"name": "redis", "key": "url"}}
    assert "REDIS_URL" not in env, "the client config reads only reserved names"
    assert env[FS_YAML_ENV]["value"] == f"/etc/feast/{CLIENT_YAML}"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[CLIENT_VOLUME]["configMap"]["name"] == "drivers-client-config"
    assert volumes["feast-lineage-claims"]["persistentVolumeClaim"] == {"claimName": "store", "readOnly": True}
    mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/etc/feast"]["readOnly"] and mounts["/feast-data"]["readOnly"] and mounts["/claims"]["readOnly"]
    assert pod["metadata"]["annotations"][labels.ANNOTATION_INJECTED] == decision.injected_hash
    assert "env" not in pod["spec"]["initContainers"][0], "init containers only when asked"


def test_run_context_tags_pod_owner_image_and_applied_revision() -> None:
    pod = _applied(_pod(), decide_injection(_pod(), "ml", [_target()]).patch)
    container = pod["spec"]["containers"][0]
    names = [entry["name"] for entry in container["env"]]
    # $(VAR) expands only variables defined earlier in the list.
    assert names.index("FEAST_LINEAGE_POD_UID") < names.index(RUN_CONTEXT_ENV)
    context = json.loads(_env(container)[RUN_CONTEXT_ENV]["value"])
    assert context["k8s.pod"] == "$(FEAST_LINEAGE_POD_NAME)"
    assert context["k8s.pod_uid"] == "$(FEAST_LINEAGE_POD_UID)"
    assert context["k8s.namespace"] == "ml"
    assert (context["k8s.job"], context["k8s.owner_kind"]) == ("train", "Job")
    assert context["k8s.image"] == "trainer:1"
    assert context["featurelineage.revision"] == "configmap/repo@abc"
    assert context["featurelineage.apply_run_id"] == "run-123"
    assert context["featurelineage.role"] == "training"


def test_literal_dollar_parentheses_are_escaped() -> None:
    pod = _pod()
    pod["spec"]["containers"][0]["image"] = "weird$(HOME)"
    env = _env(_applied(pod, decide_injection(pod, "ml", [_target()]).patch)["spec"]["containers"][0])
    assert "weird$$(HOME)" in env[RUN_CONTEXT_ENV]["value"]


def test_what_the_pod_sets_itself_is_kept() -> None:
    own = [{"name": "MLFLOW_TRACKING_URI", "value": "http://mine:5000"}]
    pod = _applied(_pod(env=own), decide_injection(_pod(env=own), "ml", [_target()]).patch)
    env = pod["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == "MLFLOW_TRACKING_URI"] == own
    assert FS_YAML_ENV in _env(pod["spec"]["containers"][0])


def test_a_second_pass_changes_nothing() -> None:
    first = _applied(_pod(), decide_injection(_pod(), "ml", [_target()]).patch)
    again = decide_injection(first, "ml", [_target()])
    assert again.already_injected and again.patch == []


def test_projects_are_looked_up_only_in_the_pods_namespace() -> None:
    decision = decide_injection(_pod(), "ml", [_target(namespace="other")])
    assert decision.patch == [] and decision.skipped == 'no FeatureStoreProject "drivers" in namespace ml'


def test_true_selects_the_namespace_default() -> None:
    default = _target("main", injection={"namespaceDefault": True})
    decision = decide_injection(_pod(label="true"), "ml", [_target(), default])
    assert decision.project == "main" and decision.skipped is None
    assert "namespaceDefault" in str(decide_injection(_pod(label="true"), "ml", [_target()]).skipped)
    two = [default, _target("second", injection={"namespaceDefault": True})]
    assert "several" in str(decide_injection(_pod(label="true"), "ml", two).skipped)


def test_a_pod_that_sets_a_reserved_name_is_not_injected() -> None:
    pod = _pod(env=[{"name": "FEAST_LINEAGE_SECRET_REDIS_URL", "value": "mine"}])
    decision = decide_injection(pod, "ml", [_target()])
    assert decision.patch == [] and "FEAST_LINEAGE_SECRET_REDIS_URL" in str(decision.skipped)


def test_disabled_and_invalid_projects_are_skipped_with_a_reason() -> None:
    disabled = decide_injection(_pod(), "ml", [_target(injection={"enabled": False})])
    assert disabled.patch == [] and "disabled" in str(disabled.skipped)
    invalid = InjectionTarget("ml", "drivers", None, problem="spec.project: required")
    assert "spec.project: required" in str(decide_injection(_pod(), "ml", [invalid]).skipped)


@pytest.mark.parametrize(
    ("level", "kept"), [(None, True), ("privileged", True), ("baseline", False), ("restricted", False)]
)
def test_hostpath_volumes_follow_pod_security(level: str | None, kept: bool) -> None:
    decision = decide_injection(_pod(), "ml", [_target()], pod_security_level=level)
    pod = _applied(_pod(), decision.patch)
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert ("feast-lineage-feast-data" in volumes) is kept
    assert "feast-lineage-claims" in volumes
    assert any("hostPath" in w for w in decision.warnings) is not kept
    recorded = pod["metadata"]["annotations"].get(labels.ANNOTATION_INJECTION_WARNINGS, "")
    assert ("forbids it" in recorded) is not kept


def test_serving_pods_get_the_config_without_auto_logging() -> None:
    pod = _pod(annotations={labels.ANNOTATION_ROLE: "serving"})
    env = _env(_applied(pod, decide_injection(pod, "ml", [_target()]).patch)["spec"]["containers"][0])
    assert env[FS_YAML_ENV]["value"] == f"/etc/feast/{CLIENT_YAML_NO_AUTOLOG}"
    data = client_config_data(_spec())
    assert yaml.safe_load(data[CLIENT_YAML])["mlflow"]["auto_log"] is True
    assert yaml.safe_load(data[CLIENT_YAML_NO_AUTOLOG])["mlflow"]["auto_log"] is False


def test_init_containers_when_asked() -> None:
    pod = _pod(annotations={labels.ANNOTATION_INJECT_INIT_CONTAINERS: "true"})
    injected = _applied(pod, decide_injection(pod, "ml", [_target()]).patch)
    assert FS_YAML_ENV in _env(injected["spec"]["initContainers"][0])


def test_client_config_expands_only_reserved_secret_names() -> None:
    store = yaml.safe_load(client_config_data(_spec())[CLIENT_YAML])["online_store"]
    assert store["connection_string"] == "${FEAST_LINEAGE_SECRET_REDIS_URL}"
    assert store["home"] == "$HOME", "an undeclared name is left for admission to refuse, never redirected"


def test_injected_volumes_must_be_runner_volumes() -> None:
    with pytest.raises(ValueError, match=r"injection\.volumes names no volume"):
        _spec(injection={"volumes": ["nope"]})


def test_webhook_configuration_only_sees_labelled_pods_and_fails_open() -> None:
    (webhook,) = injection_webhook_configuration({"url": "https://127.0.0.1:1/mutate-pods"})["webhooks"]
    assert webhook["objectSelector"] == {"matchExpressions": [{"key": labels.LABEL_INJECT, "operator": "Exists"}]}
    assert "kube-system" in webhook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert (webhook["failurePolicy"], webhook["sideEffects"], webhook["reinvocationPolicy"]) == (
        "Ignore",
        "None",
        "IfNeeded",
    )
    assert "caBundle" not in webhook["clientConfig"]
