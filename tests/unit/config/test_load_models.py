"""``gate.load.rate`` and ``gate.load.stages``: the open and the closed load model as written in
stagegate.yaml, their defaults, per-target overrides, and every mistake reported at its file,
line and key with a hint."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.config import ConfigError, GateSettings, StageSpec, load_config
from pytest_stagegate.config._gate import open_model_users
from pytest_stagegate.units import format_arrival_rate, parse_arrival_rate

MARK = "# <--"  # the line a bad case must be reported on

TARGETS = """\
targets:
  staging: {base_url: "http://127.0.0.1:9"}
  prod: {base_url: "http://127.0.0.1:9"}
"""


def settings(tmp_path: Path, text: str) -> dict[str, GateSettings]:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(TARGETS + textwrap.dedent(text), encoding="utf-8")
    config = load_config(path)
    return {name: config.gate_settings(name) for name in ("staging", "prod")}


# --- the rate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "per_second"),
    [
        ("50/s", 50.0),
        ("3000/m", 50.0),
        ("90/h", 0.025),
        ("10/min", 10 / 60),
        ("2.5 / sec", 2.5),
        ("1e3/s", 1000.0),
        ("20", 20.0),  # a bare number is per second, as min_rps
        ("0.5", 0.5),
    ],
)
def test_rate_forms(tmp_path: Path, written: str, per_second: float) -> None:
    load = settings(tmp_path, f"gate:\n  load:\n    rate: {written}\n")["staging"].load
    assert load.rate == pytest.approx(per_second)
    assert load.open_model and load.stages == ()
    assert load.duration == defaults.DURATION  # a constant rate runs for the duration


@pytest.mark.parametrize("per_second", [50.0, 0.025, 1 / 7, 123456.5, 1e-4])
def test_a_formatted_rate_reads_back(per_second: float) -> None:
    text = format_arrival_rate(per_second)
    assert parse_arrival_rate(text) == pytest.approx(per_second, rel=1e-5), text


def test_formatted_rates_use_the_largest_unit_with_a_number_of_at_least_one() -> None:
    assert [format_arrival_rate(r) for r in (50, 0.5, 0.025, 1e-4)] == [
        "50/s",
        "30/m",
        "1.5/m",
        "0.36/h",
    ]


def test_the_closed_model_is_the_default(tmp_path: Path) -> None:
    load = settings(tmp_path, "gate:\n  load:\n    users: 3\n    rate:\n    stages:\n")[
        "staging"
    ].load
    assert (load.rate, load.stages, load.open_model, load.users) == (None, (), False, 3)


# --- users in the open model -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "users"),
    [
        ("100/s", 50),  # half a second's worth
        ("3000/m", 25),
        ("3/s", defaults.OPEN_MIN_USERS),
        ("100.5/s", 51),
        ("2000/s", defaults.OPEN_MAX_DEFAULT_USERS),  # capped: more would cost the CPU
    ],
)
def test_open_model_users_default_to_the_peak_rate(tmp_path: Path, rate: str, users: int) -> None:
    load = settings(tmp_path, f"gate:\n  load:\n    rate: {rate}\n")["staging"].load
    assert load.users == users
    wanted = math.ceil(load.rate * defaults.OPEN_USERS_PER_RATE)
    assert users == min(defaults.OPEN_MAX_DEFAULT_USERS, max(defaults.OPEN_MIN_USERS, wanted))


def test_open_model_users_follow_the_peak_stage_not_the_last(tmp_path: Path) -> None:
    load = settings(
        tmp_path,
        """\
        gate:
          load:
            stages:
              - {duration: 10s, rate: 120/s}
              - {duration: 10s, rate: 0}
        """,
    )["staging"].load
    assert load.users == 60  # 120/s x 0.5 s
    assert open_model_users(120.0) == 60


def test_written_users_cap_the_open_model_at_any_level(tmp_path: Path) -> None:
    both = settings(
        tmp_path,
        """\
        gate:
          load: {users: 7, requests: [GET /a]}
          targets:
            prod:
              load: {rate: 500/s}
        """,
    )
    assert both["prod"].load.users == 7  # written at the base: the user's cap
    assert both["prod"].load.rate == 500.0
    assert both["staging"].load.users == 7 and not both["staging"].load.open_model


# --- stages --------------------------------------------------------------------------------------


def test_stages_as_written(tmp_path: Path) -> None:
    load = settings(
        tmp_path,
        """\
        gate:
          load:
            requests: [GET /a]
            warmup: 5s
            stages:
              - {duration: 30s, rate: 10/s, judge: false}
              - name: peak
                duration: 2m
                rate: 50/s
                budgets:
                  total: {p95: 300ms}
                  "GET /a": {error_rate: 2%}
              - {duration: 30s, rate: 0}
        """,
    )["staging"].load
    name = defaults.CONFIG_FILE
    assert load.stages == (
        StageSpec(name="stage 1", duration=30.0, rate=10.0, judge=False),
        StageSpec(
            name="peak",
            duration=120.0,
            rate=50.0,
            budgets=(
                Budget("total", "p95", 300.0, f"{name}:14"),
                Budget("GET /a", "error_rate", 0.02, f"{name}:15"),
            ),
        ),
        StageSpec(name="stage 3", duration=30.0, rate=0.0),
    )
    assert load.duration == 180.0  # the stages' sum
    assert (load.rate, load.open_model, load.users, load.warmup) == (None, True, 25, 5.0)


def test_closed_model_stages_set_users_to_their_peak(tmp_path: Path) -> None:
    load = settings(
        tmp_path,
        """\
        gate:
          load:
            stages:
              - {duration: 10s, users: 20}
              - {duration: 1m, users: 20}
              - {duration: 10s, users: 0, judge: false}
        """,
    )["staging"].load
    assert [(s.users, s.rate, s.judge) for s in load.stages] == [
        (20, None, True),
        (20, None, True),
        (0, None, False),
    ]
    assert (load.users, load.duration, load.open_model) == (20, 80.0, False)


def test_a_locustfile_may_have_closed_model_stages(tmp_path: Path) -> None:
    (tmp_path / "l.py").write_text("")
    load = settings(
        tmp_path,
        "gate:\n  load:\n    locustfile: l.py\n    stages: [{duration: 5s, users: 2}]\n",
    )["staging"].load
    assert load.locustfile == tmp_path / "l.py" and load.users == 2


# --- per-target overrides ----------------------------------------------------------------------


def test_an_override_replaces_the_whole_load_model(tmp_path: Path) -> None:
    both = settings(
        tmp_path,
        """\
        gate:
          load:
            stages: [{duration: 10s, rate: 5/s}, {duration: 20s, rate: 5/s}]
          targets:
            prod:
              load: {rate: 2/s}
        """,
    )
    staging, prod = both["staging"].load, both["prod"].load
    assert (staging.rate, len(staging.stages), staging.duration) == (None, 2, 30.0)
    # the base's stages are gone for prod, and with them the duration they made
    assert (prod.rate, prod.stages, prod.duration) == (2.0, (), defaults.DURATION)


def test_an_override_with_stages_leaves_the_base_keys_they_decide(tmp_path: Path) -> None:
    both = settings(
        tmp_path,
        """\
        gate:
          load:
            users: 40
            spawn_rate: 4
            duration: 1m
            wait: [1s, 2s]
          targets:
            prod:
              load:
                stages: [{duration: 5s, users: 3}, {duration: 10s, users: 6}]
        """,
    )
    staging, prod = both["staging"].load, both["prod"].load
    assert (staging.users, staging.spawn_rate, staging.duration) == (40, 4.0, 60.0)
    # users, spawn_rate and duration are the stages' business; wait still applies
    assert (prod.users, prod.duration, prod.open_model) == (6, 15.0, False)
    assert (prod.spawn_rate, prod.wait) == (defaults.SPAWN_RATE, (1.0, 2.0))


def test_base_closed_model_keys_do_not_follow_an_override_to_the_open_model(
    tmp_path: Path,
) -> None:
    both = settings(
        tmp_path,
        """\
        gate:
          load: {spawn_rate: 2, wait: [1s, 3s], duration: 40s}
          targets:
            prod:
              load:
                stages: [{duration: 10s, rate: 20/s}]
        """,
    )
    staging, prod = both["staging"].load, both["prod"].load
    assert (staging.spawn_rate, staging.wait, staging.duration) == (2.0, (1.0, 3.0), 40.0)
    assert (prod.spawn_rate, prod.wait, prod.duration) == (defaults.SPAWN_RATE, (0.0, 0.0), 10.0)
    assert prod.users == max(defaults.OPEN_MIN_USERS, 10)  # 20/s x 0.5 s


def test_an_override_scenario_keeps_the_base_load_model(tmp_path: Path) -> None:
    prod = settings(
        tmp_path,
        """\
        gate:
          load: {rate: 20/s, requests: [GET /a]}
          targets:
            prod:
              load: {requests: [GET /b], warmup: 2s}
        """,
    )["prod"].load
    assert (prod.rate, [r.name for r in prod.requests], prod.warmup) == (20.0, ["GET /b"], 2.0)


def test_stage_budget_names_are_checked_against_every_scenario(tmp_path: Path) -> None:
    both = settings(
        tmp_path,
        """\
        gate:
          load:
            requests: [GET /a]
            stages: [{duration: 5s, rate: 1/s, budgets: {"GET /b": {p95: 1s}}}]
          targets:
            prod:
              load: {requests: [GET /b]}
        """,
    )
    assert both["prod"].load.stages[0].budgets[0].endpoint == "GET /b"


# --- the bad-input matrix ----------------------------------------------------------------------

BASE = TARGETS + "gate:\n  load:\n    requests: [GET /a]\n"
S = "    stages:\n"

# (id, text after the targets with the reported line marked, dotted key, hints)
BAD: list[tuple[str, str, str, list[str]]] = [
    ("rate-zero", "    rate: 0/s  # <--\n", "gate.load.rate", ["above 0", "50/s"]),
    ("rate-negative", "    rate: -5  # <--\n", "gate.load.rate", ["-5"]),
    ("rate-unit", "    rate: 50/d  # <--\n", "gate.load.rate", ["50/s, 3000/m or 90/h", "'50/d'"]),
    ("rate-bool", "    rate: yes  # <--\n", "gate.load.rate", ["True"]),
    ("rate-percent", "    rate: 5%  # <--\n", "gate.load.rate", ["'5%'"]),
    (
        "rate-and-stages",
        "    rate: 5/s  # <--\n" + S + "      - {duration: 5s, rate: 5/s}\n",
        "gate.load.rate",
        ["rate and stages cannot be used together: put the rate in the stages"],
    ),
    (
        "stages-not-a-list",
        "    stages: {duration: 5s, rate: 1/s}  # <--\n",
        "gate.load.stages",
        ["list of stages", "got a mapping"],
    ),
    ("stages-empty", "    stages: []  # <--\n", "gate.load.stages", ["an empty list"]),
    (
        "stage-not-a-mapping",
        S + "      - 30s  # <--\n",
        "gate.load.stages[0]",
        ["a stage such as {duration: 2m, rate: 50/s}", "'30s'"],
    ),
    (
        "stage-unknown-key",
        S + "      - {durtion: 5s, rate: 1/s}  # <--\n",
        "gate.load.stages[0].durtion",
        ["did you mean 'duration'?", "Valid keys here: name, duration, rate, users"],
    ),
    (
        "stage-without-duration",
        S + "      - {duration: 5s, rate: 1/s}\n      - {rate: 1/s}  # <--\n",
        "gate.load.stages[1].duration",
        ["missing", "a stage needs a duration"],
    ),
    (
        "stage-duration-zero",
        S + "      - {duration: 0s, rate: 1/s}  # <--\n",
        "gate.load.stages[0].duration",
        ["longer than 0"],
    ),
    (
        "stage-rate-and-users",
        S + "      - {duration: 5s, rate: 1/s, users: 3}  # <--\n",
        "gate.load.stages[0].users",
        ["rate", "or users", "not both"],
    ),
    (
        "stage-without-level",
        S + "      - {duration: 5s, name: up}  # <--\n",
        "gate.load.stages[0]",
        ["rate (open model, such as rate: 50/s)", "users (closed model"],
    ),
    (
        "stages-of-both-models",
        S + "      - {duration: 5s, rate: 1/s}\n      - {duration: 5s, users: 3}  # <--\n",
        "gate.load.stages[1].users",
        ["all stages use rate or all use users", "stage 1 sets rate"],
    ),
    (
        "stage-rate-negative",
        S + "      - {duration: 5s, rate: -1/s}  # <--\n",
        "gate.load.stages[0].rate",
        ["at least 0", "'-1/s'"],
    ),
    (
        "stage-users-negative",
        S + "      - {duration: 5s, users: -1}  # <--\n",
        "gate.load.stages[0].users",
        ["at least 0"],
    ),
    (
        "stage-name-empty",
        S + "      - {duration: 5s, rate: 1/s, name: ' '}  # <--\n",
        "gate.load.stages[0].name",
        ["cannot be empty"],
    ),
    (
        "stage-name-not-a-string",
        S + "      - {duration: 5s, rate: 1/s, name: 3}  # <--\n",
        "gate.load.stages[0].name",
        ["a stage name", "quotes"],
    ),
    (
        "stage-name-twice",
        S
        + "      - {duration: 5s, rate: 1/s, name: peak}\n"
        + "      - {duration: 5s, rate: 1/s, name: peak}  # <--\n",
        "gate.load.stages[1].name",
        ["stage 2 is named 'peak' like stage 1", "unique"],
    ),
    (
        "stage-name-like-a-default-name",
        S
        + "      - {duration: 5s, rate: 1/s, name: stage 2}\n"
        + "      - {duration: 5s, rate: 1/s}  # <--\n",
        "gate.load.stages[1]",
        ["stage 2 has no name and its default one, 'stage 2', is stage 1's", "name this stage"],
    ),
    (
        "stage-judge-not-bool",
        S + "      - {duration: 5s, rate: 1/s, judge: no way}  # <--\n",
        "gate.load.stages[0].judge",
        ["true or false"],
    ),
    (
        "stage-budgets-not-judged",
        S
        + "      - {duration: 5s, rate: 1/s}\n"
        + "      - {duration: 5s, rate: 1/s, judge: false, budgets: {total: {p95: 1s}}}  # <--\n",
        "gate.load.stages[1].judge",
        ["a stage with budgets cannot be judge: false"],
    ),
    (
        "stage-budget-bad-limit",
        S
        + "      - duration: 5s\n        rate: 1/s\n        budgets: {total: {p95: 300}}  # <--\n",
        "gate.load.stages[0].budgets.total.p95",
        ["a bare number is ambiguous", "300ms"],
    ),
    (
        "stage-budget-unknown-metric",
        S
        + "      - duration: 5s\n        rate: 1/s\n        budgets: {total: {p59x: 1s}}  # <--\n",
        "gate.load.stages[0].budgets.total.p59x",
        ["unknown budget 'p59x'"],
    ),
    (
        "stage-budget-unknown-request",
        S
        + "      - duration: 5s\n        rate: 1/s\n        budgets:\n"
        + '          "GET /b": {p95: 1s}  # <--\n',
        'gate.load.stages[0].budgets["GET /b"]',
        ["no request is named 'GET /b'", "did you mean 'GET /a'?"],
    ),
    (
        "stage-budget-waiver",
        S + "      - duration: 5s\n        rate: 1/s\n        budgets: {total: {error_rate: off}}"
        "  # <--\n",
        "gate.load.stages[0].budgets.total.error_rate",
        ["error_rate: off waives an error budget of gate.budgets"],
    ),
    (
        "stage-budget-regression",
        S
        + "      - duration: 5s\n        rate: 1/s\n        budgets: {total: {p95_regression: 10%}}"
        "  # <--\n",
        "gate.load.stages[0].budgets.total.p95_regression",
        ["compares the whole run with a baseline", "put it in gate.budgets"],
    ),
    (
        "no-stage-judged",
        "    stages:  # <--\n      - {duration: 5s, rate: 1/s, judge: false}\n",
        "gate.load.stages",
        ["every stage has judge: false", "nothing would be judged"],
    ),
    (
        "every-stage-at-zero",
        "    stages:  # <--\n      - {duration: 5s, users: 0}\n",
        "gate.load.stages",
        ["every stage's users is 0"],
    ),
    (
        "duration-with-stages",
        "    duration: 1m  # <--\n"
        + S
        + "      - {duration: 30s, rate: 1/s}\n      - {duration: 2m, rate: 1/s}\n",
        "gate.load.duration",
        ["duration comes from the stages (their sum is 2m30s): remove duration"],
    ),
    (
        "users-with-closed-stages",
        "    users: 5  # <--\n" + S + "      - {duration: 5s, users: 8}\n",
        "gate.load.users",
        ["users comes from the stages (they ramp up to 8): remove users"],
    ),
    (
        "spawn-rate-with-rate",
        "    rate: 5/s\n    spawn_rate: 2  # <--\n",
        "gate.load.spawn_rate",
        ["spawn_rate does not apply to the open model", "all started at once"],
    ),
    (
        "spawn-rate-with-closed-stages",
        "    spawn_rate: 2  # <--\n" + S + "      - {duration: 5s, users: 8}\n",
        "gate.load.spawn_rate",
        ["spawn_rate does not apply with stages"],
    ),
    (
        "wait-with-open-stages",
        "    wait: 1s  # <--\n" + S + "      - {duration: 5s, rate: 8/s}\n",
        "gate.load.wait",
        ["wait does not apply to the open model"],
    ),
    (
        "warmup-as-long-as-the-stages",
        "    warmup: 10s  # <--\n" + S + "      - {duration: 5s, rate: 1/s}\n"
        "      - {duration: 5s, rate: 1/s}\n",
        "gate.load.warmup",
        ["warmup (10s) must be shorter than the stages (their sum is 10s)"],
    ),
    (
        "warmup-covers-every-judged-stage",
        "    warmup: 6s  # <--\n" + S + "      - {duration: 5s, rate: 1/s}\n"
        "      - {duration: 5s, rate: 1/s, judge: false}\n",
        "gate.load.warmup",
        ["warmup (6s) covers every judged stage (the last one ends at 5s)", "nothing would be"],
    ),
    (
        "stage-budgets-inside-the-warmup",
        "    warmup: 6s\n"
        + S
        + "      - duration: 5s\n        rate: 1/s\n        budgets: {total: {p95: 1s}}  # <--\n"
        + "      - {duration: 5s, rate: 1/s}\n",
        "gate.load.stages[0].budgets",
        [
            "stage 'stage 1' ends at 5s, inside the warm-up (6s)",
            "its budgets would never be checked",
            "shorten the warm-up, or move these budgets to a later stage",
        ],
    ),
    (
        "override-warmup-over-a-stage-with-budgets",
        S
        + "      - {duration: 5s, rate: 1/s, name: ramp, budgets: {total: {p95: 1s}}}\n"
        + "      - {duration: 5s, rate: 1/s}\n  targets:\n    prod:\n"
        + "      load: {warmup: 5s}  # <--\n",
        "gate.targets.prod.load.warmup",
        ["stage 'ramp' ends at 5s, inside the warm-up (5s) for target 'prod'"],
    ),
    (
        "stage-budget-on-a-flow",
        "    flows: [{name: journey, steps: [GET /a]}]\n"
        + S
        + "      - duration: 5s\n        rate: 1/s\n        budgets:\n"
        + "          journey: {p95: 1s}  # <--\n",
        "gate.load.stages[0].budgets.journey",
        [
            "journey is a flow, and flows are judged over the whole run",
            "put this budget in gate.budgets",
        ],
    ),
    (
        "override-duration-under-base-stages",
        S
        + "      - {duration: 5s, rate: 1/s}\n  targets:\n    prod:\n"
        + "      load: {duration: 1m}  # <--\n",
        "gate.targets.prod.load.duration",
        ["duration comes from the stages (their sum is 5s)", "(for target 'prod')"],
    ),
    (
        "override-users-under-base-closed-stages",
        S
        + "      - {duration: 5s, users: 2}\n  targets:\n    prod:\n"
        + "      load: {users: 9}  # <--\n",
        "gate.targets.prod.load.users",
        ["users comes from the stages", "(for target 'prod')"],
    ),
    (
        "override-wait-under-base-rate",
        "    rate: 1/s\n  targets:\n    prod:\n      load: {wait: 1s}  # <--\n",
        "gate.targets.prod.load.wait",
        ["wait does not apply to the open model", "(for target 'prod')"],
    ),
    (
        "override-warmup-over-its-stages",
        "  targets:\n    prod:\n      load:\n        warmup: 5s  # <--\n"
        "        stages: [{duration: 5s, users: 1}]\n",
        "gate.targets.prod.load.warmup",
        ["warmup (5s) must be shorter than the stages", "for target 'prod'"],
    ),
    (
        "override-stages-under-base-warmup",
        "    warmup: 20s\n  targets:\n    prod:\n      load:\n"
        "        stages: [{duration: 5s, users: 1}]  # <--\n",
        "gate.targets.prod.load.stages",
        ["warmup (20s) must be shorter than the stages (their sum is 5s) for target 'prod'"],
    ),
]

BAD += [
    (
        "override-stage-bad-rate",
        "  targets:\n    prod:\n      load:\n        stages: [{duration: 5s, rate: fast}]  # <--\n",
        "gate.targets.prod.load.stages[0].rate",
        ["50/s, 3000/m or 90/h", "'fast'"],
    ),
    (
        "override-rate-and-stages",
        "  targets:\n    prod:\n      load:\n        rate: 1/s  # <--\n"
        "        stages: [{duration: 5s, rate: 1/s}]\n",
        "gate.targets.prod.load.rate",
        ["rate and stages cannot be used together"],
    ),
]

LOCUSTFILE_BAD: list[tuple[str, str, str, list[str]]] = [
    (
        "locustfile-with-rate",
        "    locustfile: l.py  # <--\n    rate: 5/s\n",
        "gate.load.locustfile",
        ["the open model (rate) drives the declarative requests", "use stages with users"],
    ),
    (
        "locustfile-with-open-stages",
        "    locustfile: l.py  # <--\n    stages: [{duration: 5s, rate: 1/s}]\n",
        "gate.load.locustfile",
        ["a locustfile runs its own users"],
    ),
    (
        "override-rate-over-base-locustfile",
        "    locustfile: l.py\n  targets:\n    prod:\n      load: {rate: 1/s}  # <--\n",
        "gate.targets.prod.load.rate",
        ["the open model (rate) drives the declarative requests", "(for target 'prod')"],
    ),
    (
        "override-locustfile-under-base-rate",
        "    rate: 1/s\n  targets:\n    prod:\n      load: {locustfile: l.py}  # <--\n",
        "gate.targets.prod.load.locustfile",
        ["a locustfile runs its own users", "(for target 'prod')"],
    ),
]


def _check(tmp_path: Path, text: str, key: str, hints: list[str]) -> None:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "each bad case marks exactly one line"
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error, message = info.value, str(info.value)
    assert (error.path, error.line, error.key) == (path, lines[0], key), message
    assert message.startswith(f"{path}:{lines[0]}: {key}: "), message
    assert "\n" not in message
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"


@pytest.mark.parametrize(("text", "key", "hints"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_load_model(tmp_path: Path, text: str, key: str, hints: list[str]) -> None:
    _check(tmp_path, BASE + text, key, hints)


@pytest.mark.parametrize(
    ("text", "key", "hints"), [c[1:] for c in LOCUSTFILE_BAD], ids=[c[0] for c in LOCUSTFILE_BAD]
)
def test_the_open_model_refuses_a_locustfile(
    tmp_path: Path, text: str, key: str, hints: list[str]
) -> None:
    (tmp_path / "l.py").write_text("")
    _check(tmp_path, TARGETS + "gate:\n  load:\n" + text, key, hints)
