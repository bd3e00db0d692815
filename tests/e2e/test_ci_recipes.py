"""The CI recipes in ci/ parse, pass their CI's schema and zizmor's audit, and every pytest /
stagegate command they run uses real options."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_stagegate.cli import main as stagegate_main
from tests.tools import need_module, need_tool

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


GITHUB = [r for r in RECIPES if r.parent.name == "github"]
GITLAB = [r for r in RECIPES if r.parent.name == "gitlab"]
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
# zizmor and check-jsonschema need Python 3.11: the test extra installs them there, so CI
# must run these tests there; below 3.11 they skip, naming the tool, in CI too.
NO_TOOL = "the test extra installs it on Python >= 3.11"
TOOLS_EXIST = sys.version_info >= (3, 11)


def _zizmor() -> str:
    found = Path(sysconfig.get_path("scripts")) / "zizmor"  # this environment's first
    if found.exists():
        return str(found)
    return need_tool(
        "zizmor", f"it audits the GitHub recipes; {NO_TOOL}", required_in_ci=TOOLS_EXIST
    )


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_passes_its_ci_schema(recipe: Path) -> None:
    need_module(
        "check_jsonschema",
        f"check-jsonschema checks the recipes against their CI's schema; {NO_TOOL}",
        required_in_ci=TOOLS_EXIST,
    )
    schema = SCHEMAS[recipe.parent.name]
    # The builtin schemas ship inside check-jsonschema: nothing is fetched.
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(recipe)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_github_recipes_have_no_zizmor_findings(tmp_path: Path) -> None:
    # The auditor persona reports everything zizmor knows, also what the default one hides;
    # offline, without a configuration file that could silence a rule.
    audited = subprocess.run(
        [
            _zizmor(),
            "--offline",
            "--no-config",
            "--persona",
            "auditor",
            "--format",
            "plain",
            "--cache-dir",
            str(tmp_path),
            *map(str, GITHUB),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings" in audited.stdout, audited.stdout + audited.stderr


def test_github_actions_are_pinned_to_the_commit_of_a_named_release() -> None:
    pins: dict[str, set[str]] = {}
    for recipe in GITHUB:
        for number, line in enumerate(recipe.read_text().splitlines(), 1):
            used = re.search(r"\buses:\s*(\S+)(.*)", line)
            if used is None:
                continue
            action, comment = used.groups()
            # zizmor's unpinned-uses checks the hash; the comment names the release, so that a
            # reader (and Dependabot) knows what the hash is
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), (
                f"{recipe.name}:{number}: {action} is not pinned to a full commit hash"
            )
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), (
                f"{recipe.name}:{number}: {action} has no '# vX.Y.Z' comment naming its release"
            )
            pins.setdefault(action.split("@")[0], set()).add(line.split("@", 1)[1].strip())
    assert {"actions/checkout", "actions/upload-artifact", "actions/download-artifact"} <= set(pins)
    # one release of each action across the recipes
    assert all(len(refs) == 1 for refs in pins.values()), pins


def test_github_jobs_hold_least_privilege() -> None:
    for recipe in GITHUB:
        document = yaml.safe_load(recipe.read_text())
        assert document["permissions"] == {}, f"{recipe.name}: top-level permissions"
        for name, job in document["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{recipe.name}: job {name} has no permissions"
            assert set(granted.values()) <= {"read", "none"}, f"{recipe.name}: job {name}"
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, recipe.name


def _option(words: list[str], name: str) -> str | None:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def test_gitlab_recipe_publishes_the_metrics_and_junit_reports() -> None:
    (recipe,) = GITLAB
    jobs = yaml.safe_load(recipe.read_text())
    gated = [
        (name, _words(command))
        for name, job in jobs.items()
        if isinstance(job, dict)
        for command in _commands(job)
        if command.startswith("pytest") and "--gate" in _words(command)
    ]
    assert len(gated) == 1, gated
    name, words = gated[0]
    metrics, junit = _option(words, "--gate-metrics"), _option(words, "--verdict-junit")
    assert metrics and junit, f"{recipe.name}: {' '.join(words)}"
    artifacts = jobs[name]["artifacts"]
    assert artifacts["when"] == "always"  # a failed gate's numbers are the ones to look at
    assert artifacts["reports"] == {"junit": junit, "metrics": metrics}
    assert {metrics, junit, _option(words, "--verdict")} <= set(artifacts["paths"])
