"""Real users with limited RBAC: client certificates signed by the cluster's CA, as an identity provider would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from feast_lineage import certificates
from feast_lineage.devcluster.cluster import DevCluster


def user_api(cluster: DevCluster, username: str, groups: tuple[str, ...], directory: Path) -> client.ApiClient:
    """An API client authenticated as ``username`` (in ``groups``), and nothing more."""
    pki = cluster.control_plane.pki
    ca = certificates.KeyPair((pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes())
    pair = certificates.issue(ca, username, organizations=groups, client=True)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{username}.crt", directory / f"{username}.key"
    pair.write(cert, key)
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": username, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": username, "context": {"cluster": admin["clusters"][0]["name"], "user": username}}],
        "current-context": username,
    }
    path = directory / f"{username}.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return config.new_client_from_config(config_file=str(path))


def grant(api: client.ApiClient, namespace: str, username: str, rules: list[dict[str, Any]]) -> None:
    """A Role with exactly ``rules``, bound to ``username`` in ``namespace``."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = f"{username}-role"
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": username}],
        },
    )
