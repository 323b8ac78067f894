"""Render ``feature_store.yaml`` from a project's spec.

Two variants: the runner's (Feast's own MLflow logging off: the runner logs
operations itself, with provenance and bounded timeouts) and the client's, which
injected pods mount, in two forms (retrieval auto-logging on for training, off for
serving and batch scoring). Credentials never appear: the spec can only reference
them as ``${VAR}``, which Feast expands from the environment the operator fills by
``secretKeyRef``. In the client variant every declared name is rewritten to
``${FEAST_LINEAGE_SECRET_VAR}``, a name only the webhook sets, so a client config
never reads a variable of the training pod's own environment.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml

from feast_lineage.api import FeatureStoreProjectSpec, StoreConfig
from feast_lineage.contract import FEATURE_STORE_YAML

Variant = Literal["runner", "client", "client-no-autolog"]

SECRET_ENV_PREFIX = "FEAST_LINEAGE_SECRET_"
CLIENT_YAML = FEATURE_STORE_YAML
"""Key of the client ConfigMap for training pods: retrieval auto-logging on."""
CLIENT_YAML_NO_AUTOLOG = "feature_store.no-autolog.yaml"
"""Key for serving and batch-scoring pods: auto-logging costs about 78 ms per online call in a run."""


def _store_section(store: StoreConfig) -> dict[str, Any]:
    return {"type": store.type, **store.settings}


def _client_secret_names(value: Any, names: frozenset[str]) -> Any:
    """``${NAME}`` / ``$NAME`` of declared secretEnv names rewritten to the webhook's reserved names."""
    if isinstance(value, str):
        return re.sub(
            r"\$(\{)?([A-Z_][A-Z0-9_]*)(?(1)\})",
            lambda m: "${" + SECRET_ENV_PREFIX + m.group(2) + "}" if m.group(2) in names else m.group(0),
            value,
        )
    if isinstance(value, dict):
        return {key: _client_secret_names(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_client_secret_names(item, names) for item in value]
    return value


def feature_store_config(spec: FeatureStoreProjectSpec, variant: Variant) -> dict[str, Any]:
    store = spec.feature_store
    registry: dict[str, Any] = {"registry_type": store.registry.registry_type, "path": store.registry.path}
    if store.registry.cache_ttl_seconds is not None:
        registry["cache_ttl_seconds"] = store.registry.cache_ttl_seconds
    config: dict[str, Any] = {
        "project": spec.project,
        "provider": store.provider,
        "registry": registry,
        "entity_key_serialization_version": store.entity_key_serialization_version,
    }
    if store.online_store is not None:
        config["online_store"] = _store_section(store.online_store)
    if store.offline_store is not None:
        config["offline_store"] = _store_section(store.offline_store)
    if variant != "runner":
        config = _client_secret_names(config, frozenset(entry.name for entry in store.secret_env))
    config["mlflow"] = _mlflow_section(spec, variant)
    return config


def _mlflow_section(spec: FeatureStoreProjectSpec, variant: Variant) -> dict[str, Any]:
    mlflow = spec.mlflow
    if variant == "runner" or not mlflow.enabled:
        return {"enabled": False}
    section: dict[str, Any] = {
        "enabled": True,
        "auto_log": mlflow.auto_log and variant == "client",
        "auto_log_entity_df": mlflow.auto_log_entity_df,
        "entity_df_max_rows": mlflow.entity_df_max_rows,
        # Operations are logged by the operator's runner, never by clients.
        "log_operations": False,
        "ops_experiment_suffix": mlflow.ops_experiment_suffix,
    }
    # Left out when not set, so Feast follows MLFLOW_TRACKING_URI; a YAML value would win over it.
    if mlflow.tracking_uri:
        section["tracking_uri"] = mlflow.tracking_uri
    return section


def render_feature_store_yaml(spec: FeatureStoreProjectSpec, variant: Variant) -> str:
    header = f"# Rendered by feast-lineage-operator ({variant} variant); edits are overwritten.\n"
    return header + yaml.safe_dump(feature_store_config(spec, variant), sort_keys=False)


def client_config_data(spec: FeatureStoreProjectSpec) -> dict[str, str]:
    """The client ConfigMap's data: one feature_store.yaml per pod role."""
    return {
        CLIENT_YAML: render_feature_store_yaml(spec, "client"),
        CLIENT_YAML_NO_AUTOLOG: render_feature_store_yaml(spec, "client-no-autolog"),
    }
