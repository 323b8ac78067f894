"""A real Kubernetes control plane, a local node and an MLflow server on loopback.

Used by the test suite, the benchmarks and the quickstart.
"""
