"""The CI recipes in ci/ parse, and every pytest / stagegate command they run uses real options."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_stagegate.cli import main as stagegate_main

RECIPES = sorted((Path(__file__).parents[2] / "ci").rglob("*.yml"))


def _commands(node: Any) -> Iterator[str]:
    """Every shell line under a `run:` (GitHub) or `script:` (GitLab) key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script"):
                lines = value if isinstance(value, list) else str(value).splitlines()
                yield from (str(line).strip() for line in lines if str(line).strip())
            else:
                yield from _commands(value)
    elif isinstance(node, list):
        for item in node:
            yield from _commands(item)


def _words(command: str) -> list[str]:
    command = command.split(">>")[0]
    command = re.sub(r"\$\{\{[^}]*\}\}|\$\w+|\"\$\w+\"", "x", command)
    return shlex.split(command)


@pytest.fixture(scope="module")
def pytest_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, check=True
    ).stdout


def test_there_are_recipes_for_github_and_gitlab() -> None:
    names = {p.parent.name for p in RECIPES}
    assert {"github", "gitlab"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_commands_are_real(
    recipe: Path, pytest_help: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stagegate commands read a verdict: give them a real one, so that exit code 4 can
    # only mean that their arguments did not parse.
    golden = Path(__file__).parents[1] / "golden" / "verdict-pass.json"
    (tmp_path / "stagegate-verdict.json").write_text(golden.read_text())
    monkeypatch.chdir(tmp_path)
    document = yaml.safe_load(recipe.read_text())
    commands = [c for c in _commands(document) if c.startswith(("pytest", "stagegate"))]
    assert commands, f"{recipe} runs neither pytest nor stagegate"
    for command in commands:
        words = _words(command)
        if words[0] == "pytest":
            for word in words[1:]:
                if word.startswith("--"):
                    option = word.split("=", 1)[0]
                    assert re.search(rf"\s{re.escape(option)}[\s=,]", pytest_help), (
                        f"{recipe.name}: {option} is not a pytest option"
                    )
        else:
            # A usage error exits 4; anything else means the arguments parsed.
            assert stagegate_main(words[1:]) != 4, f"{recipe.name}: {command}"


def _steps(node: Any) -> Iterator[dict[str, Any]]:
    """Every GitHub step (a mapping with `run:`)."""
    if isinstance(node, dict):
        if "run" in node:
            yield node
        for value in node.values():
            yield from _steps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _steps(item)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_verify_requires_a_signature(recipe: Path) -> None:
    commands = [c for c in _commands(yaml.safe_load(recipe.read_text())) if "stagegate verify" in c]
    for command in commands:
        assert "--require-signature" in _words(command), f"{recipe.name}: {command}"


def test_github_recipes_sign_and_verify_with_the_ci_secret() -> None:
    signing, verifying = 0, 0
    for recipe in (r for r in RECIPES if r.parent.name == "github"):
        for step in _steps(yaml.safe_load(recipe.read_text())):
            run = str(step["run"])
            gated = run.startswith("pytest") and "--gate" in run.split()
            if gated or "stagegate verify" in run:
                env = step.get("env") or {}
                assert env.get("STAGEGATE_SIGNING_KEY") == "${{ secrets.STAGEGATE_SIGNING_KEY }}", (
                    f"{recipe.name}: {run}"
                )
                signing += gated
                verifying += "stagegate verify" in run
    assert (signing, verifying) == (1, 1)
