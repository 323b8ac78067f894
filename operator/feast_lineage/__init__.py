"""A Kubernetes operator for lineage-managed Feast feature stores."""

__version__ = "0.1.0"
