"""Tests against real Feast and a real MLflow server (no Kubernetes)."""
