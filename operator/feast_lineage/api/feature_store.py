"""The settings that become `feature_store.yaml`."""

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from .common import CamelModel, SecretKeyRef, check_unique


class RegistryConfig(CamelModel):
    """The Feast registry: where the definitions applied by `feast apply` are kept."""

    registry_type: Literal["file", "sql", "remote"] = "file"
    """Kind of registry."""
    path: Annotated[str, Field(min_length=1, max_length=2048)]
    """File path or object-store URL (file), SQLAlchemy URL (sql) or server address (remote).
    Credentials are written as `${ENV_VAR}` references to secretEnv entries."""
    cache_ttl_seconds: Annotated[int, Field(ge=0)] | None = None
    """Seconds a client caches the registry; Feast's default when not set."""


class StoreConfig(CamelModel):
    """An online or offline store section of feature_store.yaml."""

    type: Annotated[str, Field(min_length=1, max_length=512)]
    """Store type as Feast names it (e.g. sqlite, redis, postgres, file) or a class path."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Further keys of the section, passed to Feast as they are; values may reference `${ENV_VAR}`."""


class SecretEnvVar(CamelModel):
    """An environment variable filled from a Secret, for use as `${NAME}` in feature_store.yaml."""

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Z_][A-Z0-9_]*$")]
    """Name of the environment variable (upper case)."""
    secret_key_ref: SecretKeyRef
    """Secret key that holds the value."""


class FeatureStoreConfig(CamelModel):
    """Feast settings rendered into feature_store.yaml; credentials only through secretEnv."""

    provider: Annotated[str, Field(min_length=1, max_length=253)] = "local"
    """Feast provider (local, gcp, aws or a class path)."""
    registry: RegistryConfig
    """The Feast registry."""
    online_store: StoreConfig | None = None
    """Online store; Feast's default for the provider when not set."""
    offline_store: StoreConfig | None = None
    """Offline store; Feast's default for the provider when not set."""
    entity_key_serialization_version: Annotated[int, Field(ge=1, le=3)] = 3
    """Serialization version of entity keys in the online store."""
    secret_env: list[SecretEnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Environment variables set from Secrets in the runner and in injected pods. This is the only way
    credentials reach feature_store.yaml: it references them as `${NAME}` and Feast expands them."""

    @field_validator("secret_env")
    @classmethod
    def _unique_names(cls, value: list[SecretEnvVar]) -> list[SecretEnvVar]:
        check_unique((entry.name for entry in value), "secretEnv name")
        return value
