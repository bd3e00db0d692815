"""``discovery.find_config``: stagegate.yaml at the rootdir, else walking up from where the
command runs, stopping at the first found, after a repository root, or at the filesystem root.
Real directories under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.discovery import find_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp_path/repo/project/tests/api, with a .git folder in repo."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "project" / "tests" / "api").mkdir(parents=True)
    return tmp_path / "repo" / "project"


def write(folder: Path) -> Path:
    path = folder / defaults.CONFIG_FILE
    path.write_text("targets: {}\n")
    return path


def test_the_rootdir_comes_first(project: Path) -> None:
    tests = project / "tests"
    write(tests)
    at_root = write(project)
    search = find_config(tests, rootdir=project)
    assert search.path == at_root
    assert search.how == "found at the rootdir"


def test_found_where_it_runs(project: Path) -> None:
    path = write(project / "tests")
    search = find_config(project / "tests", rootdir=project / "tests" / "api")
    assert search.path == path
    assert search.how == "found in the current directory"


def test_walking_up_stops_at_the_first_found(project: Path) -> None:
    write(project.parent)  # the repository's, further up
    nearest = write(project)
    start = project / "tests" / "api"
    search = find_config(start, rootdir=start)
    assert search.path == nearest
    assert search.how == f"found walking up from {start}"


def test_a_repository_root_is_searched_then_ends_the_walk(project: Path, tmp_path: Path) -> None:
    write(tmp_path)  # above the repository: never read
    start = project / "tests"
    search = find_config(start, rootdir=start)
    assert search.path is None
    assert search.how == ""
    assert search.looked == (
        f"in {start} or any directory above it up to {project.parent} (the repository root)"
    )
    at_repo = write(project.parent)
    assert find_config(start, rootdir=start).path == at_repo


def test_a_git_file_marks_a_repository_root_too(tmp_path: Path) -> None:
    """A worktree or a submodule has a .git file, not a folder."""
    write(tmp_path)
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere\n")
    search = find_config(tmp_path / "wt")
    assert search.path is None
    assert search.looked == f"in {tmp_path / 'wt'} (a repository root)"


def test_without_a_repository_the_walk_reaches_the_filesystem_root(tmp_path: Path) -> None:
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    if any((folder / ".git").exists() for folder in start.parents):
        pytest.skip("tmp_path is inside a repository here")  # pragma: no cover
    if any((folder / defaults.CONFIG_FILE).is_file() for folder in start.parents):
        pytest.skip("a stagegate.yaml lies above tmp_path here")  # pragma: no cover
    search = find_config(start, rootdir=tmp_path)
    assert search.path is None
    anchor = Path(start.anchor)
    assert search.stop == anchor
    assert search.looked == (
        f"at the rootdir {tmp_path} or in {start} or any directory above it up to {anchor} "
        "(the filesystem root)"
    )
    found = write(tmp_path / "a")
    assert find_config(start, rootdir=tmp_path).how == f"found walking up from {start}"
    assert find_config(start, rootdir=tmp_path).path == found


def test_a_folder_named_like_the_config_is_not_one(project: Path) -> None:
    (project / "tests" / defaults.CONFIG_FILE).mkdir()
    found = write(project)
    assert find_config(project / "tests").path == found


def test_a_relative_start_is_taken_from_the_current_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "tests")
    found = write(project)
    search = find_config(".")
    assert search.path == found
    assert search.start == project / "tests"
