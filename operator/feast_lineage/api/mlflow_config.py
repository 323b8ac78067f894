"""How Feast and the operator talk to MLflow (the `mlflow` section of feature_store.yaml and more)."""

import re
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from .cel import CelRule, validations
from .common import SECRET_KEY_PATTERN, CamelModel, ObjectName

CREDENTIALS_PAIRED = CelRule(
    rule="has(self.usernameKey) == has(self.passwordKey)",
    message="mlflow.credentials.usernameKey and passwordKey must be set together",
)
CREDENTIALS_SOME_KEY = CelRule(
    rule="has(self.tokenKey) || has(self.usernameKey)",
    message="mlflow.credentials needs tokenKey, or usernameKey and passwordKey",
)
TRACKING_URI_NO_USER_INFO = CelRule(
    rule="!has(self.trackingUri) || !self.trackingUri.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')",
    message="mlflow.trackingUri must not carry user info (user:password@); give credentials by mlflow.credentials",
)
"""The message never repeats the URI: user info may hold a password, and a refusal is shown to whoever asks."""
_USER_INFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")

TRACKING_URI_PATTERN = r"^(https?|file|databricks(-uc)?|sqlite|postgresql|mysql|mssql)(\+[A-Za-z0-9]+)?(:|$)"

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]


class MlflowCredentials(CamelModel):
    """Secret with the MLflow credentials; its keys become MLFLOW_TRACKING_* environment variables."""

    model_config = ConfigDict(json_schema_extra=validations(CREDENTIALS_PAIRED, CREDENTIALS_SOME_KEY))

    secret_name: ObjectName
    """Name of the Secret, in the namespace of the project."""
    username_key: SecretKey | None = None
    """Key holding the user name (MLFLOW_TRACKING_USERNAME)."""
    password_key: SecretKey | None = None
    """Key holding the password (MLFLOW_TRACKING_PASSWORD)."""
    token_key: SecretKey | None = None
    """Key holding a bearer token (MLFLOW_TRACKING_TOKEN)."""

    @model_validator(mode="after")
    def _usable_keys(self) -> Self:
        if (self.username_key is None) != (self.password_key is None):
            raise ValueError(CREDENTIALS_PAIRED.message)
        if self.token_key is None and self.username_key is None:
            raise ValueError(CREDENTIALS_SOME_KEY.message)
        return self


class MlflowConfig(CamelModel):
    """MLflow lineage: Feast's `mlflow` options plus the operator's bounds on MLflow calls."""

    model_config = ConfigDict(json_schema_extra=validations(TRACKING_URI_NO_USER_INFO))

    enabled: bool = True
    """Master switch of the Feast MLflow integration."""
    tracking_uri: Annotated[str, Field(max_length=2048, pattern=TRACKING_URI_PATTERN)] | None = None
    """MLflow tracking server; MLFLOW_TRACKING_URI of the pod's environment when not set."""
    credentials: MlflowCredentials | None = None
    """Credentials for the tracking server."""
    auto_log: bool = True
    """Tag the active MLflow run with the features of every retrieval."""
    auto_log_entity_df: bool = False
    """Save the entity DataFrame of historical retrievals as a run artifact."""
    entity_df_max_rows: Annotated[int, Field(ge=1)] = 100000
    """Entity DataFrames with more rows than this are not saved."""
    log_operations: bool = True
    """Log `feast apply` and `feast materialize` runs to the operations experiment."""
    ops_experiment_suffix: Annotated[str, Field(max_length=64)] = "-feast-ops"
    """Suffix appended to the Feast project name to name the operations experiment."""
    request_timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    """Timeout of each MLflow HTTP request, so a dead server never stalls a run."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 1
    """Retries of a failed MLflow HTTP request."""

    @model_validator(mode="after")
    def _no_user_info(self) -> Self:
        if self.tracking_uri is not None and _USER_INFO.match(self.tracking_uri):
            raise ValueError(TRACKING_URI_NO_USER_INFO.message)
        return self
