"""The marker decisions, as pure functions: which targets a ``targets(...)`` marker names, what
is wrong with it, why a test is skipped on this target, and which skips a report counts as
"skipped for safety" or "meant for another target"."""

from __future__ import annotations

from collections.abc import Sequence

from .. import defaults
from ..errors import did_you_mean

# The reasons start with these; the flags below recognise the skips this plugin made.
SAFETY_SKIP = "stagegate: destructive"
ELSEWHERE_SKIP = "stagegate: runs only on"


def target_names(args: Sequence[object]) -> list[str]:
    """``targets("a", "b")`` and ``targets(["a", "b"])`` alike."""
    names: list[str] = []
    for arg in args:
        if isinstance(arg, (list, tuple, set, frozenset)):
            names.extend(str(a) for a in arg)
        else:
            names.append(str(arg))
    return names


def targets_problem(nodeid: str, names: Sequence[str], known: Sequence[str]) -> str | None:
    """Why a ``targets(...)`` marker is wrong (no name, or a name stagegate.yaml does not
    define), or None."""
    if not names:
        return (
            f"{nodeid}: @pytest.mark.targets needs at least one target name, "
            f"e.g. @pytest.mark.targets('staging')"
        )
    unknown = [n for n in names if n not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known).lstrip("; ")
        return (
            f"{nodeid}: @pytest.mark.targets names {', '.join(map(repr, unknown))}, "
            f"which {defaults.CONFIG_FILE} does not define ({hint + ' ' if hint else ''}known: "
            f"{', '.join(known)})"
        )
    return None


def skip_reason(
    target: str, *, protected: bool, names: Sequence[str] | None, destructive: bool
) -> str | None:
    """Why a test is not run on ``target``, or None to run it.

    ``names``: the targets its ``targets(...)`` marker names (None without one);
    ``destructive``: whether it is marked destructive.
    """
    if names is not None and target not in names:
        return f"{ELSEWHERE_SKIP} {', '.join(names)}; target is {target!r}"
    if protected and destructive:
        return f"{SAFETY_SKIP} test not run: target {target!r} is protected"
    return None


def is_safety_skip(*, skipped: bool, reason: str, protected: bool, destructive: bool) -> bool:
    """A destructive test this plugin skipped because the target is protected (counted and
    shown loudly: a skip for safety must never pass unnoticed)."""
    return skipped and protected and destructive and reason.startswith(SAFETY_SKIP)


def is_elsewhere_skip(*, skipped: bool, reason: str) -> bool:
    """A test this plugin skipped because its ``targets(...)`` marker names other targets."""
    return skipped and reason.startswith(ELSEWHERE_SKIP)
