"""The validating webhook of FeatureStoreProjects and MaterializationJobs.

For a create or a spec change, it denies what the administrator's policy forbids and asks
the API server, with SubjectAccessReviews in the requesting user's name (from the admission
request), whether that user could do alone what the operator would do for them. A denial
names what is missing. It fails closed (failurePolicy Fail): it guards privilege.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from feast_lineage.api import (
    APPROVE_PLAN_ANNOTATION,
    APPROVE_VERB,
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    GROUP,
    MATERIALIZATION_JOB_KIND,
    FeatureStoreProjectSpec,
    validation_message,
)
from feast_lineage.domain.labels import ANNOTATION_CREATOR, ANNOTATION_SCHEDULED_TIME, LABEL_SETTLED, RUN_FINALIZER
from feast_lineage.domain.materialization_state import settled
from feast_lineage.domain.tenancy import AccessCheck, TenancyPolicy, policy_violations, required_access
from feast_lineage.redaction import KNOWN

log = logging.getLogger(__name__)

Authorize = Callable[[dict[str, Any], AccessCheck], bool]
"""Whether the user (the admission request's userInfo) may do the check, per the API server."""

_CONCURRENT_REVIEWS = 8
"""SubjectAccessReviews asked at once: a project referencing many Secrets costs one round trip, not one each."""


def subject_access_review(user: dict[str, Any], check: AccessCheck) -> dict[str, Any]:
    """The SubjectAccessReview body asking whether ``user`` may do ``check``."""
    attributes = {"namespace": check.namespace, "verb": check.verb, "group": check.group, "resource": check.resource}
    if check.name:
        attributes["name"] = check.name
    if check.subresource:
        attributes["subresource"] = check.subresource
    spec: dict[str, Any] = {
        "user": user.get("username", ""),
        "groups": list(user.get("groups") or []),
        "resourceAttributes": attributes,
    }
    if user.get("uid"):
        spec["uid"] = user["uid"]
    if user.get("extra"):
        spec["extra"] = {key: list(values) for key, values in user["extra"].items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def _schedule_marks(obj: dict[str, Any]) -> tuple[str | None, list[Any]]:
    meta = obj.get("metadata") or {}
    owners = [
        (ref.get("kind"), ref.get("name"), ref.get("uid"))
        for ref in meta.get("ownerReferences") or []
        if ref.get("controller") and ref.get("kind") == FEATURE_STORE_PROJECT_KIND
    ]
    return (meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME), owners


def _forged_provenance(kind: str | None, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Only the operator's schedule makes a run "triggeredBy: schedule": its scheduled-time
    annotation and its project as controller owner. Anyone else (the operator never reaches this
    webhook) may not set or change either."""
    if _schedule_marks(new) == _schedule_marks(old if old else {}):
        return []
    return [
        f"{kind}: the {ANNOTATION_SCHEDULED_TIME} annotation and a FeatureStoreProject controller owner "
        "are set only by the operator's schedule"
    ]


def _early_settled_label(kind: str | None, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """The settled label takes a run out of the operator's watch: a new run, or one not finished with
    its record delivered, that got it would never be run or finalized. It may be added only to a
    run that is settled already (the operator adds it then); taking it off is harmless (the
    operator puts it back)."""

    def labelled(obj: dict[str, Any]) -> bool:
        return LABEL_SETTLED in ((obj.get("metadata") or {}).get("labels") or {})

    if kind != MATERIALIZATION_JOB_KIND or not labelled(new) or (old and labelled(old)):
        return []
    if old and settled(new, RUN_FINALIZER):
        return []
    return [
        f"the {LABEL_SETTLED} label takes a MaterializationJob out of the operator's watch: the operator "
        "sets it on runs that finished and delivered their audit record, never on a new or unfinished one"
    ]


def _forged_creator(request: dict[str, Any], new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """The creator annotation is the authenticated user on create, and never changes after."""

    def recorded(obj: dict[str, Any]) -> str | None:
        return ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_CREATOR)

    username = (request.get("userInfo") or {}).get("username")
    if request.get("operation") == "CREATE":
        value = recorded(new)
        if value is not None and value != username:
            return [f"the {ANNOTATION_CREATOR} annotation is recorded at admission: it must name you ({username})"]
        return []
    if recorded(new) != recorded(old):
        return [f"the {ANNOTATION_CREATOR} annotation records who created the object and cannot change"]
    return []


def _pointer(key: str) -> str:
    """``key`` as one JSON Pointer segment."""
    return key.replace("~", "~0").replace("/", "~1")


def creation_patch(request: dict[str, Any], watched: Collection[str] = ()) -> list[dict[str, Any]]:
    """What a create gets at admission, as JSON Patch operations: the creator annotation set to the
    requesting user, whatever the request said; and the operator's finalizer (on MaterializationJobs
    and FeatureStoreProjects alike), which its first pass would otherwise add with a PATCH of its own
    (a request, a watch event and a step of the pass per object). Without this webhook (it fails
    open) that pass still does.

    ``watched``: the namespaces this operator watches (none named: all). The webhook sees every
    namespace's creates; a finalizer on an object no operator of these namespaces passes would never
    come off, and the object could not be deleted."""
    if request.get("operation") != "CREATE":
        return []
    meta = (request.get("object") or {}).get("metadata") or {}
    patch: list[dict[str, Any]] = []
    username = (request.get("userInfo") or {}).get("username")
    if username:
        patch.append(
            {"op": "add", "path": f"/metadata/annotations/{_pointer(ANNOTATION_CREATOR)}", "value": username}
            if meta.get("annotations")
            else {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_CREATOR: username}}
        )
    finalizers = meta.get("finalizers") or []
    passed_here = not watched or str(request.get("namespace") or "") in watched
    if (
        (request.get("kind") or {}).get("kind") in (MATERIALIZATION_JOB_KIND, FEATURE_STORE_PROJECT_KIND)
        and RUN_FINALIZER not in finalizers
        and passed_here
    ):
        patch.append(
            {"op": "add", "path": "/metadata/finalizers/-", "value": RUN_FINALIZER}
            if finalizers
            else {"op": "add", "path": "/metadata/finalizers", "value": [RUN_FINALIZER]}
        )
    return patch


def mutate_resource(review: dict[str, Any], watched: Collection[str] = ()) -> dict[str, Any]:
    """Mutating: a create's :func:`creation_patch`."""
    request = review.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    patch = creation_patch(request, watched)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


def approval_check(request: dict[str, Any]) -> AccessCheck | None:
    """The check a request needs when it sets or changes a project's plan approval: the ``approve``
    verb on that project, so the author of a change need not be the one who may release it.
    Removing the approval needs nothing beyond the update itself."""
    if (request.get("kind") or {}).get("kind") != FEATURE_STORE_PROJECT_KIND:
        return None

    def approval(obj: dict[str, Any]) -> str | None:
        return ((obj.get("metadata") or {}).get("annotations") or {}).get(APPROVE_PLAN_ANNOTATION)

    new, old = request.get("object") or {}, request.get("oldObject") or {}
    if approval(new) is None or approval(new) == approval(old):
        return None
    return AccessCheck(
        verb=APPROVE_VERB,
        resource=FEATURE_STORE_PROJECT_PLURAL,
        group=GROUP,
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or (new.get("metadata") or {}).get("name") or ""),
        why=f"to set the {APPROVE_PLAN_ANNOTATION} annotation",
    )


class ResourceValidation:
    def __init__(self, authorize: Authorize, policy: TenancyPolicy) -> None:
        self.authorize = authorize
        self.policy = policy
        self._reviews = ThreadPoolExecutor(_CONCURRENT_REVIEWS, thread_name_prefix="access-review")

    def problems(self, request: dict[str, Any]) -> list[str]:
        kind = (request.get("kind") or {}).get("kind")
        namespace = str(request.get("namespace") or "")
        new = request.get("object") or {}
        old = request.get("oldObject") or {}
        found = _forged_provenance(kind, new, old) if kind == MATERIALIZATION_JOB_KIND else []
        found += _early_settled_label(kind, new, old)
        found += _forged_creator(request, new, old)
        user = request.get("userInfo") or {}
        name = user.get("username", "(unknown)")
        approval = approval_check(request)
        if approval is not None and not self.authorize(user, approval):
            found.append(f'user "{name}" may not {approval.describe()}')
        if request.get("operation") == "UPDATE" and new.get("spec") == old.get("spec"):
            return found  # otherwise, metadata changes ask nothing new of the operator
        spec: FeatureStoreProjectSpec | None = None
        if kind == FEATURE_STORE_PROJECT_KIND:
            try:
                spec = FeatureStoreProjectSpec.model_validate(new.get("spec") or {})
            except ValidationError as error:
                return [validation_message(error)]
            found += policy_violations(spec, self.policy)
        elif kind != MATERIALIZATION_JOB_KIND:
            return []
        checks = required_access(spec, namespace)
        allowed = self._reviews.map(lambda check: self.authorize(user, check), checks)
        found += [
            f'user "{name}" may not {check.describe()}' for check, ok in zip(checks, allowed, strict=True) if not ok
        ]
        return found

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review.get("request") or {}
        problems = self.problems(request)
        response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": not problems}
        if problems:
            response["status"] = {
                "code": 403,
                "reason": "Forbidden",
                # A refusal quotes the spec: never a secret value the operator knows, nor URL user info.
                "message": KNOWN.redact("refused by feast-lineage: " + "; ".join(problems)),
            }
        return {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": response,
        }
