"""Which commit is being tested: from the CI environment, or from git.

The verdict records the commit so that ``stagegate verify --commit`` can refuse a verdict that
was produced for another build. Sources, first match wins:

    github   GitHub Actions: GITHUB_SHA, GITHUB_REF, run URL from
             GITHUB_SERVER_URL / GITHUB_REPOSITORY / GITHUB_RUN_ID
    gitlab   GitLab CI: CI_COMMIT_SHA, CI_COMMIT_REF_NAME, CI_JOB_URL
    env      STAGEGATE_COMMIT (and optionally STAGEGATE_REF, STAGEGATE_RUN_URL), for other CI
             systems
    git      ``git rev-parse HEAD`` and ``git rev-parse --abbrev-ref HEAD`` in the working
             directory (5 s timeout)
    unknown  none of the above; every field is None

Nothing here raises: a missing git, a directory that is not a repository or a hung git all
end in ``unknown``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .records import CommitInfo

__all__ = ["GIT_TIMEOUT", "commit_info"]

GIT_TIMEOUT = 5.0
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def commit_info(environ: Mapping[str, str], cwd: Path) -> CommitInfo:
    """The commit under test, from ``environ`` (CI variables) or from git in ``cwd``."""

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    sha = get("GITHUB_SHA")
    if sha:
        server = (get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        repository, run_id = get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")
        run_url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        return CommitInfo(sha=sha, ref=get("GITHUB_REF"), run_url=run_url, source="github")

    sha = get("CI_COMMIT_SHA")
    if sha:
        return CommitInfo(
            sha=sha, ref=get("CI_COMMIT_REF_NAME"), run_url=get("CI_JOB_URL"), source="gitlab"
        )

    sha = get("STAGEGATE_COMMIT")
    if sha:
        return CommitInfo(
            sha=sha, ref=get("STAGEGATE_REF"), run_url=get("STAGEGATE_RUN_URL"), source="env"
        )

    sha = _git(cwd, "rev-parse", "HEAD")
    if sha and _SHA.match(sha):
        ref = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
        # "HEAD" is what git answers on a detached checkout: there is no branch to report.
        return CommitInfo(sha=sha, ref=ref if ref != "HEAD" else None, run_url=None, source="git")

    return CommitInfo(sha=None, ref=None, run_url=None, source="unknown")


def _git(cwd: Path, *args: str) -> str | None:
    """The stripped output of a git command, or None if it failed in any way."""
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None
