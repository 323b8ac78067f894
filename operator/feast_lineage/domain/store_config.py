"""Render ``feature_store.yaml`` from a project's spec.

Two variants: the runner's (Feast's own MLflow logging off: the runner logs
operations itself, with provenance and bounded timeouts) and the client's, which
injected training pods mount (auto-logging of retrievals on). Credentials never
appear: the spec can only reference them as ``${VAR}``, which Feast expands from
the environment the operator fills by ``secretKeyRef``.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml

from feast_lineage.api import FeatureStoreProjectSpec, StoreConfig

Variant = Literal["runner", "client"]


def _store_section(store: StoreConfig) -> dict[str, Any]:
    return {"type": store.type, **store.settings}


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
    config["mlflow"] = _mlflow_section(spec, variant)
    return config


def _mlflow_section(spec: FeatureStoreProjectSpec, variant: Variant) -> dict[str, Any]:
    mlflow = spec.mlflow
    if variant == "runner" or not mlflow.enabled:
        return {"enabled": False}
    section: dict[str, Any] = {
        "enabled": True,
        "auto_log": mlflow.auto_log,
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
