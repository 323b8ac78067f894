"""The operator process: Kopf wiring, thin handlers, and the Kubernetes reads and writes around the domain."""
