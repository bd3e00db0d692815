"""Which commit a run tests: CI environments first, then a real git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_stagegate.verdict import CommitInfo
from pytest_stagegate.verdict import commit as ci_env
from pytest_stagegate.verdict.commit import commit_info

SHA = "3f2a9c1e5b7d4a60812c9e3f5a7b1d2c4e6f8a90"
OTHER = "0123456789abcdef0123456789abcdef01234567"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "feature/gate")
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def not_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "plain"
    path.mkdir()
    # Stop git from finding a repository in a parent directory of the temporary directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return path


def test_github_actions(not_a_repo: Path) -> None:
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SERVER_URL": "https://github.example.com/",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "4242",
    }
    assert commit_info(environ, not_a_repo) == CommitInfo(
        sha=SHA,
        ref="refs/heads/main",
        run_url="https://github.example.com/acme/shop/actions/runs/4242",
        source="github",
    )


def test_github_defaults_the_server_and_needs_repository_and_run_for_a_url(
    not_a_repo: Path,
) -> None:
    info = commit_info(
        {"GITHUB_SHA": SHA, "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "1"}, not_a_repo
    )
    assert info.run_url == "https://github.com/acme/shop/actions/runs/1"
    assert info.ref is None
    assert commit_info({"GITHUB_SHA": SHA}, not_a_repo).run_url is None


def test_gitlab_ci(not_a_repo: Path) -> None:
    environ = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": SHA,
        "CI_COMMIT_REF_NAME": "main",
        "CI_JOB_URL": "https://gitlab.example.com/acme/shop/-/jobs/77",
    }
    assert commit_info(environ, not_a_repo) == CommitInfo(
        sha=SHA,
        ref="main",
        run_url="https://gitlab.example.com/acme/shop/-/jobs/77",
        source="gitlab",
    )


def test_stagegate_commit(not_a_repo: Path) -> None:
    assert commit_info({"STAGEGATE_COMMIT": f"  {SHA}\n"}, not_a_repo) == CommitInfo(
        sha=SHA, ref=None, run_url=None, source="env"
    )
    environ = {
        "STAGEGATE_COMMIT": SHA,
        "STAGEGATE_REF": "release/1.2",
        "STAGEGATE_RUN_URL": "https://ci.example.com/build/9",
    }
    assert commit_info(environ, not_a_repo) == CommitInfo(
        sha=SHA, ref="release/1.2", run_url="https://ci.example.com/build/9", source="env"
    )


def test_precedence_github_then_gitlab_then_env(not_a_repo: Path) -> None:
    everything = {"GITHUB_SHA": SHA, "CI_COMMIT_SHA": OTHER, "STAGEGATE_COMMIT": OTHER}
    assert commit_info(everything, not_a_repo).source == "github"
    del everything["GITHUB_SHA"]
    assert commit_info(everything, not_a_repo).source == "gitlab"
    del everything["CI_COMMIT_SHA"]
    assert commit_info(everything, not_a_repo).source == "env"


def test_empty_variables_are_absent(not_a_repo: Path) -> None:
    info = commit_info(
        {"GITHUB_SHA": "", "CI_COMMIT_SHA": "  ", "STAGEGATE_COMMIT": SHA}, not_a_repo
    )
    assert info.source == "env"


@needs_git
def test_ci_environment_wins_over_git(repo: Path) -> None:
    assert commit_info({"STAGEGATE_COMMIT": OTHER}, repo).sha == OTHER


@needs_git
def test_git_repository(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert commit_info({}, repo) == CommitInfo(
        sha=head, ref="feature/gate", run_url=None, source="git"
    )


@needs_git
def test_git_from_a_subdirectory(repo: Path) -> None:
    sub = repo / "tests" / "smoke"
    sub.mkdir(parents=True)
    assert commit_info({}, sub).sha == git(repo, "rev-parse", "HEAD")


@needs_git
def test_git_detached_head_has_no_ref(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", head)
    assert commit_info({}, repo) == CommitInfo(sha=head, ref=None, run_url=None, source="git")


@needs_git
def test_git_repository_without_commits_is_unknown(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert commit_info({}, empty) == CommitInfo(source="unknown")


@needs_git
def test_not_a_repository_is_unknown(not_a_repo: Path) -> None:
    assert commit_info({}, not_a_repo) == CommitInfo(
        sha=None, ref=None, run_url=None, source="unknown"
    )


def test_missing_directory_is_unknown(tmp_path: Path) -> None:
    assert commit_info({}, tmp_path / "gone").source == "unknown"


def test_git_not_installed_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert commit_info({}, tmp_path).source == "unknown"


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for git")
def test_hanging_git_times_out_to_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    # a git that would answer, too late: without the timeout this would read as a commit
    sleep = shutil.which("sleep")
    assert sleep is not None
    fake.write_text(f"#!/bin/sh\n{sleep} 30\necho {SHA}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(ci_env, "GIT_TIMEOUT", 0.3)
    assert commit_info({}, tmp_path).source == "unknown"


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for git")
def test_git_printing_garbage_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\necho 'fatal: something odd'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert commit_info({}, tmp_path).source == "unknown"
