"""Install paths: the RBAC the operator needs, the Helm chart's generated parts and the plain manifest."""
