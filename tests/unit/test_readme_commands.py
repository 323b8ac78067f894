"""The README's commands keep working: each one parses, each make target and file it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from feast_lineage.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _shell_lines() -> list[str]:
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and "[" not in command:  # a synopsis with [optional] parts is not a command
                lines.append(command)
    return lines


COMMANDS = [line for line in _shell_lines() if line.startswith("feast-lineage ")]
MAKE_TARGETS = [line.split()[1] for line in _shell_lines() if line.startswith("make ")]


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 3 and {"example", "test"} <= set(MAKE_TARGETS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_feast_lineage_command_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.handler)


@pytest.mark.parametrize("target", sorted(set(MAKE_TARGETS)))
def test_each_make_target_exists(target: str) -> None:
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), flags=re.M), target


def test_each_path_the_readme_names_exists() -> None:
    named = set(re.findall(r"`((?:examples|benchmarks|operator|charts|crds|deploy)/[\w./-]+)`", README))
    missing = sorted(path for path in named if not (ROOT / path.rstrip("/")).exists())
    assert missing == [], missing
