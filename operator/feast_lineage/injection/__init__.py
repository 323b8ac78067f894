"""Training-pod injection: the admission webhook, its certificates, and the pods that missed it."""
