"""Which user an isolated pod's container runs as: the kubelet's reading of a security context."""

from __future__ import annotations

from typing import Any

import pytest

from feast_lineage.devcluster.security import ContainerUser, container_user


def _pod(pod_context: dict[str, Any], container_context: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "securityContext": container_context or {}}
    return {"spec": {"securityContext": pod_context, "containers": [container]}}


def _user(pod_context: dict[str, Any], container_context: dict[str, Any] | None = None) -> ContainerUser | None:
    pod = _pod(pod_context, container_context)
    return container_user(pod, pod["spec"]["containers"][0])


def test_no_user_runs_as_root() -> None:
    assert _user({}) is None


def test_container_context_overrides_the_pods() -> None:
    user = _user({"runAsUser": 1000, "runAsGroup": 1000}, {"runAsUser": 2000})
    assert user == ContainerUser(2000, 1000, [], None)


def test_group_defaults_to_root_and_fs_group_is_supplementary() -> None:
    user = _user({"runAsUser": 10001, "fsGroup": 3000, "supplementalGroups": [4000]})
    assert user == ContainerUser(10001, 0, [3000, 4000], 3000)
    assert user is not None and user.as_spec() == {"uid": 10001, "gid": 0, "groups": [3000, 4000]}


@pytest.mark.parametrize(
    ("pod_context", "container_context", "message"),
    [
        ({"runAsNonRoot": True}, {}, "runAsNonRoot and image will run as root"),
        ({}, {"runAsNonRoot": True, "runAsUser": 0}, "breaks non-root policy"),
    ],
)
def test_non_root_policy_is_refused_when_the_user_would_be_root(
    pod_context: dict[str, Any], container_context: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _user(pod_context, container_context)
