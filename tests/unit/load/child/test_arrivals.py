"""``load.child.arrivals``: the open model's schedule, the windows, and a process's slots."""

from __future__ import annotations

import math

import pytest

from pytest_stagegate.load.child.arrivals import Schedule, Slots, Windows, stage_bounds
from pytest_stagegate.load.plan import PlannedStage


def stages(*spec: tuple[float, float]) -> list[PlannedStage]:
    return [PlannedStage(f"s{k}", d, rate=r) for k, (d, r) in enumerate(spec)]


def test_a_constant_rate_starts_from_the_first_instant() -> None:
    s = Schedule(rate=10.0, stages=[], duration=3.0)
    assert [s.time_of(i) for i in range(4)] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert s.level(0.0) == s.level(2.9) == 10.0 and s.level(3.0) == 0.0
    assert s.total == 30.0
    # slot 30 would be due at the end: the run has 30 slots, 0..29 (k6's constant-arrival-rate)
    assert s.count == 30 and s.first == 0.0
    assert s.time_of(29) == pytest.approx(2.9) and s.time_of(30) == math.inf
    assert s.slots_before(3.0) == 30 and s.slots_before(0.0) == 0
    assert s.slots_before(1.05) == 11


def test_a_ramp_follows_k6s_convention_and_solves_the_quadratic() -> None:
    st = stages((2.0, 10.0), (2.0, 10.0), (1.0, 0.0), (1.0, 0.0), (2.0, 20.0))
    assert stage_bounds(st) == [
        (0.0, 2.0, 0.0, 10.0),
        (2.0, 4.0, 10.0, 10.0),
        (4.0, 5.0, 10.0, 0.0),
        (5.0, 6.0, 0.0, 0.0),
        (6.0, 8.0, 0.0, 20.0),
    ]
    s = Schedule(rate=None, stages=st, duration=0.0)
    # areas: 10 + 20 + 5 + 0 + 20
    assert s.total == pytest.approx(55.0) and s.end == 8.0
    assert s.level(1.0) == pytest.approx(5.0) and s.level(4.5) == pytest.approx(5.0)
    assert s.level(5.5) == 0.0 and s.level(7.0) == pytest.approx(10.0)
    # ramp from 0 at 5/s^2: N(t) = 2.5 t^2; slot i is due where N reaches i + 1 (k6's
    # ramping-arrival-rate): at sqrt((i + 1) / 2.5), none at t = 0 where the level is 0
    assert s.first == 1.0 and s.count == 55
    for i in range(9):
        assert s.time_of(i) == pytest.approx(math.sqrt((i + 1) / 2.5))
    assert s.time_of(9) == pytest.approx(2.0) and s.time_of(14) == pytest.approx(2.5)
    # ramp down 10 -> 0 over 4..5 s: N = 30 + 10 x - 5 x^2
    assert s.time_of(33) == pytest.approx(4.0 + (10 - math.sqrt(100 - 80)) / 10)
    # the ramp down's last slot is due at its end; the flat stage at 0 starts nothing: the
    # next slot waits for the last ramp, whose last one is due at the end
    assert s.time_of(34) == pytest.approx(5.0)
    assert s.time_of(35) == pytest.approx(6.0 + math.sqrt(1 / 5))
    assert s.time_of(54) == pytest.approx(8.0) and s.time_of(55) == math.inf
    # each slot's time gives its index back, and they are in order
    times = [s.time_of(i) for i in range(55)]
    assert times == sorted(times)
    for i, t in enumerate(times):
        if not 5.0 <= t <= 6.0:
            assert s.due(t) == pytest.approx(i + 1, abs=1e-6)
    # by window, a slot due at a stage's edge is the stage it completes: the ramps get their
    # areas (10, 20, 5, 0, 20), the flat stage at 0 none
    slots = Slots(s, Windows(0.0, st), lag=0.5)
    slots.begin(0.0)
    per_stage = [0] * len(st)
    while (slot := slots.pull()) is not None:
        per_stage[slot.window.stage] += 1
    assert per_stage == [10, 20, 5, 0, 20]


@pytest.mark.parametrize(
    ("spec", "dues"),
    [
        (((2.0, 0.0), (2.0, 0.0)), []),  # a level of 0 throughout starts nothing
        # 3 s at 0, then 0 -> 5/s over 1 s (N = 2.5 x^2): nothing at t = 0
        (((3.0, 0.0), (1.0, 5.0)), [3.0 + math.sqrt(0.4), 3.0 + math.sqrt(0.8)]),
        # 0 -> 2/s -> 0 over 1 s each (areas 1 and 1), then a plateau at 0: each ramp's slot
        # is due at its end and is its own, the plateau has none
        (((1.0, 2.0), (1.0, 0.0), (2.0, 0.0)), [1.0, 2.0]),
    ],
)
def test_no_slot_is_due_while_the_level_is_zero(
    spec: tuple[tuple[float, float], ...], dues: list[float]
) -> None:
    st = stages(*spec)
    s = Schedule(rate=None, stages=st, duration=0.0)
    slots = Slots(s, Windows(0.0, st), lag=0.5)
    slots.begin(0.0)
    got = []
    while (slot := slots.pull()) is not None:
        got.append(slot)
    assert [g.due for g in got] == pytest.approx(dues)
    for g in got:  # the level was above 0 just before, and its stage is not flat at 0
        assert s.level(g.due - 1e-6) > 0
        lo, hi = stage_bounds(st)[g.window.stage][2:]
        assert lo + hi > 0


@pytest.mark.parametrize(
    ("rate", "spec", "expected"),
    [
        (100.0, (), 300),
        (33.3, (), 100),  # 99.9 due by the end: slot 99 is due before it
        (None, ((1.0, 50.0), (2.0, 100.0)), 175),
        (None, ((1.5, 7.0), (0.5, 0.0), (1.0, 3.0)), 8),  # 5.25 + 1.75 + 1.5 = 8.5
    ],
)
def test_the_slots_of_a_run_are_the_integral_of_the_level(
    rate: float | None, spec: tuple[tuple[float, float], ...], expected: int
) -> None:
    s = Schedule(rate=rate, stages=stages(*spec), duration=3.0)
    slots = Slots(s, Windows(0.0, []), lag=0.5)
    slots.begin(1000.0)
    pulled = []
    while (slot := slots.pull()) is not None:
        pulled.append(slot)
    # a rate's slots are due from t = 0, none at the end; a stages schedule's where N reaches
    # 1, 2, ...: the whole iterations of its area
    whole = math.ceil(s.total) if rate is not None else math.floor(s.total)
    assert len(pulled) == expected == whole == s.count
    assert [p.index for p in pulled] == list(range(expected))
    assert all(p.due == 1000.0 + s.time_of(p.index) for p in pulled)


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_workers_split_the_slots_and_together_start_them_all(workers: int) -> None:
    st = stages((1.0, 40.0), (2.0, 40.0), (1.0, 101.0))
    schedule = Schedule(rate=None, stages=st, duration=0.0)
    every: list[int] = []
    for k in range(workers):
        slots = Slots(schedule, Windows(0.0, st), lag=0.5)
        slots.begin(0.0, k, workers)
        while (slot := slots.pull()) is not None:
            assert slot.index % workers == k
            every.append(slot.index)
    assert sorted(every) == list(range(schedule.count)) and schedule.count == 170


@pytest.mark.parametrize("workers", [1, 3])
def test_each_stage_counts_its_own_due_and_dropped_slots(workers: int) -> None:
    # warm-up 1 s; ramp 0 -> 20/s over 2 s (area 20, judge: false), peak 20/s over 2 s (40),
    # tail 20 -> 0/s over 1 s (10). Every other slot is dropped; closed at 5.5 s (lag 0.5 s)
    st = [
        PlannedStage("ramp", 2.0, rate=20.0, judge=False),
        PlannedStage("peak", 2.0, rate=20.0, measure=True),
        PlannedStage("tail", 1.0, rate=0.0),
    ]
    schedule = Schedule(rate=None, stages=st, duration=0.0)
    windows = Windows(1.0, st)
    due = dropped = 0
    stage: dict[int, list[int]] = {}
    taken: dict[int, list[int]] = {}
    for k in range(workers):
        slots = Slots(schedule, windows, lag=0.5)
        slots.begin(0.0, k, workers)
        n = 0
        while (slot := slots.pull()) is not None and slot.due < 4.2:
            (slots.drop if n % 2 else slots.started)(slot)
            n += 1
            if n == 30:  # a report in between
                for s, (d, x) in slots.take_stage_counts().items():
                    taken.setdefault(s, [0, 0])
                    taken[s][0] += d
                    taken[s][1] += x
        slots.close(5.0)  # the last pulled, due at 4.2 s, and the unpulled up to 4.5 s dropped
        due, dropped = due + slots.due, dropped + slots.dropped
        for s, (d, x) in slots.stage_counts.items():
            stage.setdefault(s, [0, 0])
            stage[s][0] += d
            stage[s][1] += x
        for s, (d, x) in slots.take_stage_counts().items():
            taken.setdefault(s, [0, 0])
            taken[s][0] += d
            taken[s][1] += x
        assert slots.take_stage_counts() == {}
    # the ramp is not judged: none of its slots counts; the peak's 40 all do, the tail's
    # due by 4.5 s (N(4.5) = 60 + 7.5) too
    assert set(stage) == {1, 2} and stage[1][0] == 40 and stage[2][0] == 7
    assert (due, dropped) == (stage[1][0] + stage[2][0], stage[1][1] + stage[2][1])
    assert 20 - workers <= stage[1][1] <= 20 + workers  # every other one, per worker
    assert stage[2][1] >= 7 - 2 * workers  # mostly dropped at the close
    assert taken == stage


def test_a_process_share_must_exist() -> None:
    slots = Slots(Schedule(rate=1.0, stages=[], duration=1.0), Windows(0.0, []), lag=0.5)
    with pytest.raises(ValueError):
        slots.begin(0.0, 2, 2)
    assert slots.pull() is None  # not begun


def test_windows_cut_the_warmup_out_of_the_stages() -> None:
    st = [
        PlannedStage("ramp", 2.0, rate=10.0, judge=False),
        PlannedStage("peak", 2.0, rate=10.0, measure=True),
        PlannedStage("tail", 1.0, rate=5.0),
    ]
    w = Windows(3.0, st)
    got = [(x.start, x.end, x.judged, x.stage, x.name, x.measure) for x in w.windows]
    assert got == [
        (-math.inf, 2.0, False, 0, "ramp", False),
        (2.0, 3.0, False, 1, "peak", False),  # the warm-up's part of the stage
        (3.0, 4.0, True, 1, "peak", True),
        (4.0, math.inf, True, 2, "tail", False),  # after the planned end: still the last
    ]
    assert [w.at(t).name for t in (-1.0, 0.0, 2.5, 3.0, 4.0, 99.0, 1.0)] == [
        "ramp",
        "ramp",
        "peak",
        "peak",
        "tail",
        "tail",
        "ramp",
    ]
    assert w.at(2.99).judged is False and w.at(3.0).judged is True
    plain = Windows(0.0, [])
    assert [(x.start, x.judged) for x in plain.windows] == [(-math.inf, True)]


def test_due_and_dropped_count_the_judged_windows_only() -> None:
    slots = Slots(Schedule(rate=10.0, stages=[], duration=10.0), Windows(1.0, []), lag=0.5)
    slots.begin(0.0)
    first = [slots.pull() for _ in range(12)]  # due 0.0 .. 1.1
    for slot in first[:10]:  # the warm-up's
        assert slot is not None and not slot.window.judged
        slots.drop(slot)
    assert (slots.due, slots.dropped) == (0, 0)
    assert first[10] is not None and first[11] is not None
    slots.started(first[10])
    slots.drop(first[11])
    assert (slots.due, slots.dropped) == (2, 1)
    assert slots.take_counts() == (2, 1) and slots.take_counts() == (0, 0)


def test_closing_drops_the_slots_nobody_pulled_in_time() -> None:
    # 10/s, warm-up 1 s; 12 slots pulled (0.0 .. 1.1 s); stopped at 3.0 s with a lag of 0.5 s:
    # the slots due 1.2 .. 2.5 s were never pulled although late: 14 dropped; those due after
    # 2.5 s could still have started in time, and are not counted
    slots = Slots(Schedule(rate=10.0, stages=[], duration=10.0), Windows(1.0, []), lag=0.5)
    slots.begin(500.0)
    for _ in range(12):
        slot = slots.pull()
        assert slot is not None
        slots.started(slot)
    assert slots.due == 2
    assert slots.close(503.0) == 14
    assert (slots.due, slots.dropped) == (16, 14)
    assert slots.pull() is None and slots.close(504.0) == 0


@pytest.mark.parametrize("workers", [1, 3])
def test_the_workers_unpulled_slots_add_up(workers: int) -> None:
    schedule = Schedule(rate=None, stages=stages((2.0, 30.0), (2.0, 30.0)), duration=0.0)
    windows = Windows(0.5, stages((2.0, 30.0), (2.0, 30.0)))
    total = 0
    for k in range(workers):
        slots = Slots(schedule, windows, lag=0.5)
        slots.begin(0.0, k, workers)
        total += slots.close(3.5)
    # judged: due in [0.5, 3.0] -> slots with t_i in [0.5, 3.0]
    expected = sum(1 for i in range(200) if 0.5 <= schedule.time_of(i) <= 3.0)
    # N(t) = 7.5 t^2 up to 2 s, then 30 + 30 (t - 2): slots 1 (N = 2, after N(0.5) = 1.875) to
    # 59 (N = 60 at 3.0)
    assert total == expected == 59


def test_closing_drops_the_pulled_slots_whose_user_never_woke_in_time() -> None:
    slots = Slots(Schedule(rate=10.0, stages=[], duration=10.0), Windows(0.0, []), lag=0.5)
    slots.begin(0.0)
    pulled = [slots.pull() for _ in range(30)]  # due 0.0 .. 2.9
    for slot in pulled[:10]:
        assert slot is not None
        slots.started(slot)
    # stopped at 3.0: the 16 pulled ones due 1.0 .. 2.5 s are dropped, the 4 due later are not
    # counted, and nobody pulled a slot due by 2.5 s that was not counted
    assert slots.close(3.0) == 16
    assert (slots.due, slots.dropped) == (26, 16)
