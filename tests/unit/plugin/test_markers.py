"""``plugin.markers``: the marker decisions, as the pure functions they are."""

from __future__ import annotations

import pytest

from pytest_stagegate.plugin.markers import (
    ELSEWHERE_SKIP,
    SAFETY_SKIP,
    is_elsewhere_skip,
    is_safety_skip,
    skip_reason,
    target_names,
    targets_problem,
)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("staging",), ["staging"]),
        (("local", "staging"), ["local", "staging"]),
        ((["local", "staging"],), ["local", "staging"]),
        ((("a",), "b"), ["a", "b"]),
        ((), []),
    ],
)
def test_target_names(args: tuple[object, ...], names: list[str]) -> None:
    assert target_names(args) == names


def test_a_marker_without_names_is_a_problem() -> None:
    assert targets_problem("t.py::test_x", [], ("local",)) == (
        "t.py::test_x: @pytest.mark.targets needs at least one target name, "
        "e.g. @pytest.mark.targets('staging')"
    )


def test_an_unknown_name_is_a_problem_with_a_hint() -> None:
    problem = targets_problem("t.py::test_x", ["stagign", "local"], ("local", "staging"))
    assert problem is not None
    assert problem.startswith(
        "t.py::test_x: @pytest.mark.targets names 'stagign', which stagegate.yaml does not define"
    )
    assert "staging" in problem.split("(", 1)[1]
    assert problem.endswith("known: local, staging)")


def test_known_names_are_no_problem() -> None:
    assert targets_problem("t.py::test_x", ["local"], ("local", "staging")) is None


def test_skip_reason_for_another_target() -> None:
    reason = skip_reason("local", protected=False, names=["staging", "qa"], destructive=False)
    assert reason == "stagegate: runs only on staging, qa; target is 'local'"
    assert reason.startswith(ELSEWHERE_SKIP)


def test_skip_reason_for_a_destructive_test_on_a_protected_target() -> None:
    reason = skip_reason("production", protected=True, names=None, destructive=True)
    assert reason == "stagegate: destructive test not run: target 'production' is protected"
    assert reason.startswith(SAFETY_SKIP)
    # named for this target, still destructive: still skipped
    assert skip_reason("production", protected=True, names=["production"], destructive=True) == (
        reason
    )


@pytest.mark.parametrize(
    ("protected", "names", "destructive"),
    [
        (False, None, True),  # destructive on an unprotected target runs
        (True, None, False),  # a reading test on a protected target runs
        (False, ["local"], False),
    ],
)
def test_tests_that_run(protected: bool, names: list[str] | None, destructive: bool) -> None:
    assert skip_reason("local", protected=protected, names=names, destructive=destructive) is None


def test_another_target_wins_over_the_destructive_reason() -> None:
    reason = skip_reason("production", protected=True, names=["staging"], destructive=True)
    assert reason is not None and reason.startswith(ELSEWHERE_SKIP)


def test_safety_skip_flag_needs_every_condition() -> None:
    reason = skip_reason("prod", protected=True, names=None, destructive=True) or ""
    assert is_safety_skip(skipped=True, reason=reason, protected=True, destructive=True)
    assert not is_safety_skip(skipped=False, reason=reason, protected=True, destructive=True)
    assert not is_safety_skip(skipped=True, reason=reason, protected=False, destructive=True)
    assert not is_safety_skip(skipped=True, reason=reason, protected=True, destructive=False)
    # a destructive test that skipped itself for another reason is not a safety skip
    assert not is_safety_skip(skipped=True, reason="no database", protected=True, destructive=True)


def test_elsewhere_skip_flag() -> None:
    reason = skip_reason("local", protected=False, names=["staging"], destructive=False) or ""
    assert is_elsewhere_skip(skipped=True, reason=reason)
    assert not is_elsewhere_skip(skipped=False, reason=reason)
    assert not is_elsewhere_skip(skipped=True, reason="not today")
