"""The answers as text: tables for people, JSON and YAML for scripts (pure functions)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence

import yaml

from feast_lineage.lineage.answers import (
    ApplyEntry,
    Changes,
    FeatureUsage,
    LineageModel,
    MaterializationEntry,
    ProjectHistory,
    TrainingLineage,
)
from feast_lineage.timestamps import rfc3339

FORMATS = ("table", "json", "yaml")
NONE = "-"


def render(answer: LineageModel, output: str) -> str:
    """``answer`` in one of :data:`FORMATS`; the text ends with a newline."""
    if output == "json":
        return json.dumps(answer.to_json_ready(), indent=2) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(answer.to_json_ready(), sort_keys=False, allow_unicode=True))
    if isinstance(answer, TrainingLineage):
        return training_text(answer)
    if isinstance(answer, FeatureUsage):
        return usage_text(answer)
    if isinstance(answer, ProjectHistory):
        return history_text(answer)
    raise TypeError(f"no table for {type(answer).__name__}")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-style columns: upper-case headers, three spaces between columns, no trailing blanks."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _time(value: datetime.datetime | None) -> str:
    return rfc3339(value) if value is not None else NONE


def _or_none(value: object) -> str:
    return NONE if value is None or value == "" or value == [] else str(value)


def _fields(pairs: Sequence[tuple[str, str | None]]) -> str:
    """``LABEL  value`` lines, labels padded; continuation lines (label "") indented."""
    width = max(len(label) for label, _ in pairs)
    return "".join(f"{label.ljust(width)}   {value}".rstrip() + "\n" for label, value in pairs if value is not None)


def window(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if start is None and end is None:
        return NONE
    return f"[{_time(start)}, {_time(end)})"


def changes_text(changes: Changes | None) -> str:
    if changes is None:
        return "changes not recorded"
    if changes.empty():
        return "no changes"
    parts = []
    for label, names in (
        ("views", changes.feature_views),
        ("services", changes.feature_services),
        ("entities", changes.entities),
    ):
        if names:
            parts.append(f"{label} {' '.join(names)}")
    return "; ".join(parts)


def apply_summary(entry: ApplyEntry) -> str:
    parts = [
        entry.revision or "revision not recorded",
        *([f"commit {entry.commit}"] if entry.commit else []),
        f"{_or_none(entry.outcome)} {_time(entry.time)}",
        *([f"trigger {entry.trigger}"] if entry.trigger else []),
    ]
    return ", ".join(parts)


def materialization_summary(entry: MaterializationEntry) -> str:
    return (
        f"{window(entry.window_start, entry.window_end)} by {entry.name or 'an unnamed run'}, "
        f"{_or_none(entry.outcome)} {_time(entry.time)}"
    )


def training_text(answer: TrainingLineage) -> str:
    pairs: list[tuple[str, str | None]] = []
    if answer.model is not None:
        model = answer.model
        aliases = f" (aliases: {', '.join(model.aliases)})" if model.aliases else ""
        pairs.append(
            (
                "MODEL VERSION",
                f"{model.name}/{model.version}{aliases}, {_or_none(model.status)}, registered {_time(model.created)}",
            )
        )
    service = answer.feature_service or NONE
    pairs.append(
        (
            "FEATURE SERVICE",
            f"{service} (from the {answer.feature_service_from})" if answer.feature_service_from else service,
        )
    )
    run = answer.run
    pairs += [
        (
            "TRAINING RUN",
            f"{run.run_id} {run.run_name or ''}, {_or_none(run.status)}, experiment {_or_none(run.experiment)}",
        ),
        ("", f"{_time(run.start_time)} to {_time(run.end_time)}"),
        ("", run.url),
    ]
    for version in answer.registered_versions:
        pairs.append(
            (
                "REGISTERED AS",
                f"{version.uri}" + (f" (aliases: {', '.join(version.aliases)})" if version.aliases else ""),
            )
        )
    if answer.pod is not None:
        pod = answer.pod
        cluster_read = answer.project is not None and answer.project.in_cluster is not None
        phase = f" ({pod.pod_phase})" if pod.pod_phase else " (no longer in the cluster)" if cluster_read else ""
        pairs.append(
            (
                "POD",
                f"{_or_none(pod.namespace)}/{_or_none(pod.name)}{phase}, container {_or_none(pod.container)}, "
                f"image {_or_none(pod.image)}",
            )
        )
        if pod.owner_kind:
            state = f" ({pod.job_status})" if pod.job_status else ""
            pairs.append(("OWNER", f"{pod.owner_kind} {pod.owner_name}{state}"))
    pairs.append(("ENTITY DF", _entity_df_text(answer)))
    if answer.project is not None:
        project = answer.project
        where = "" if project.in_cluster is not False else " (no longer in the cluster)"
        pairs.append(
            ("PROJECT", f"{project.namespace}/{project.name}{where}, Feast project {_or_none(project.feast_project)}")
        )
    if answer.apply is not None:
        pairs.append(
            ("APPLY", apply_summary(answer.apply) + (f" (from the {answer.apply_from})" if answer.apply_from else ""))
        )
        if answer.apply.run is not None:
            pairs.append(
                ("", f"run {answer.apply.run.run_id}" + (f" {answer.apply.run.url}" if answer.apply.run.url else ""))
            )
        if answer.apply.job_name:
            pairs.append(("", f"Job {answer.apply.job_name}"))
    else:
        pairs.append(("APPLY", "unknown: the run names no apply and no earlier successful apply was found"))
    if answer.current_apply is not None:
        pairs.append(("APPLIED SINCE", apply_summary(answer.current_apply)))
    text = _fields(pairs)
    if answer.feature_views:
        rows = [
            [
                view.name,
                ",".join(view.features) or NONE,
                f"{_time(view.last_changed_by.time)} {view.last_changed_by.revision or ''}".strip()
                if view.last_changed_by
                else NONE,
                materialization_summary(view.last_materialization) if view.last_materialization else NONE,
            ]
            for view in answer.feature_views
        ]
        text += "\n" + table(
            ["FEATURE VIEW", "FEATURES", "LAST CHANGED BY APPLY", "LAST MATERIALIZED BEFORE TRAINING"], rows
        )
    return text


def _entity_df_text(answer: TrainingLineage) -> str:
    found = answer.entity_df
    if found is None:
        return "not recorded"
    parts = [found.type or "unknown type"]
    if found.rows is not None:
        parts.append(f"{found.rows} rows")
    if found.columns:
        parts.append(f"columns {','.join(found.columns)}")
    if found.query:
        parts.append(f"query {found.query}")
    if found.start_date or found.end_date:
        parts.append(f"from {found.start_date or NONE} to {found.end_date or NONE}")
    artifact = (
        f"artifact {found.artifact}"
        if found.artifact
        else "not logged as an artifact (set spec.mlflow.autoLogEntityDf to keep it)"
    )
    return ", ".join(parts) + "; " + artifact


def usage_text(answer: FeatureUsage) -> str:
    what = {"featureView": "feature view", "featureService": "feature service", "unknown": "name"}[answer.object_kind]
    where = (
        f"in the registry of {', '.join(answer.projects)}"
        if answer.projects
        else "in no project's registry in this namespace now"
    )
    text = f"{what} {answer.name}, namespace {answer.namespace}: {where}\n\n"
    if answer.model_versions:
        text += table(
            ["MODEL VERSION", "ALIASES", "FEATURE SERVICE", "STATUS", "REGISTERED", "RUN"],
            [
                [
                    f"{v.name}/{v.version}",
                    ",".join(v.aliases) or NONE,
                    _or_none(v.feature_service),
                    _or_none(v.status),
                    _time(v.created),
                    _or_none(v.run_id),
                ]
                for v in answer.model_versions
            ],
        )
    else:
        text += "no registered model version uses it\n"
    text += "\n"
    if answer.runs:
        text += table(
            ["RUN", "STARTED", "STATUS", "PROJECT", "FEATURE SERVICE", "FEATURE VIEWS", "JOB"],
            [
                [
                    run.run_id,
                    _time(run.start_time),
                    _or_none(run.status),
                    _or_none(run.project),
                    _or_none(run.feature_service),
                    ",".join(run.feature_views) or NONE,
                    _or_none(run.job or run.pod),
                ]
                for run in answer.runs
            ],
        )
        text += f"({len(answer.runs)} newest of {answer.runs_matched} runs)\n"
    else:
        text += "no run in this namespace used it\n"
    return text


def history_text(answer: ProjectHistory) -> str:
    project = answer.project
    where = "" if project.in_cluster is not False else " (no longer in the cluster)"
    text = f"project {project.namespace}/{project.name}{where}, Feast project {_or_none(project.feast_project)}\n\n"
    if not answer.entries:
        return text + "no applies or materializations recorded\n"
    rows = []
    for entry in answer.entries:
        if isinstance(entry, ApplyEntry):
            details = f"{entry.revision or 'revision not recorded'}"
            if entry.commit:
                details += f" commit {entry.commit[:12]}"
            details += f": {changes_text(entry.changes)}"
        else:
            views = ",".join(entry.feature_views) or NONE
            details = f"{entry.name or NONE} {window(entry.window_start, entry.window_end)} {views}"
        if entry.error:
            details += f"; error: {entry.error}"
        run = entry.run.run_id if entry.run else ("pending delivery" if "pendingAudit" in entry.sources else NONE)
        rows.append(
            [_time(entry.time), entry.operation, _or_none(entry.outcome), _or_none(entry.trigger), details, run]
        )
    return text + table(["TIME", "OPERATION", "OUTCOME", "TRIGGER", "DETAILS", "MLFLOW RUN"], rows)
