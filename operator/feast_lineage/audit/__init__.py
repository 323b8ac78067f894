"""Audit records of Feast operations and their exactly-once delivery to MLflow.

Nothing here imports ``mlflow`` or ``feast``: the operator delivers records that a runner
could not log, and must stay lean to do so.
"""

from feast_lineage.audit.delivery import DeliveredRun, deliver
from feast_lineage.audit.errors import DeliveryError
from feast_lineage.audit.mlflow_rest import Credentials, MlflowRestClient
from feast_lineage.audit.record import AuditRecord

__all__ = ["AuditRecord", "Credentials", "DeliveredRun", "DeliveryError", "MlflowRestClient", "deliver"]
