"""Lineage answers read from the cluster and MLflow together (``feast-lineage lineage ...``).

- :mod:`.answers`: the answers' shapes (what ``-o json`` prints);
- :mod:`.records`: MLflow runs, model versions and Kubernetes objects read into plain facts;
- :mod:`.assemble`: the answers built from those facts (pure functions);
- :mod:`.render`: tables for people, JSON and YAML for scripts (pure functions);
- :mod:`.sources`: the only I/O: bounded MLflow REST calls and Kubernetes reads;
- :mod:`.queries`: which reads each question needs, against any source;
- :mod:`.command`: the subcommands, their options and exit codes.

Nothing here imports ``mlflow`` or ``feast``.
"""
