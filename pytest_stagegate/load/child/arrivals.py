"""The open model's schedule and the run's windows. Pure: no locust or gevent import, so it is
unit-tested in the pytest process (docs/load-engine.md, Open model).

Times are seconds from the load start. The level (iterations per second, or users in the
closed model) is piecewise linear: with ``plan.rate`` it is that rate from the start; with
``plan.stages`` it moves linearly from the previous stage's level (0 before the first stage) to
each stage's own over its duration (k6's convention), and is 0 after the last stage. ``N(t)``,
the integral of the level, is how many iterations are due by ``t``. Slot ``i`` (0-based, over
the whole run and every worker) is due at the ``t_i`` where ``N(t_i)`` reaches ``i + first``,
found by solving the segment's quadratic: with ``plan.rate``, ``first`` is 0 (k6's
constant-arrival-rate: ``t_i = i / rate``, the first iteration at once, none at the end);
with stages it is 1 (k6's ramping-arrival-rate: an iteration is due once a whole one's area
has passed, so none starts while the level is 0, and one due exactly at the end counts).
With ``W`` workers, worker ``k`` takes the slots ``i % W == k``, so the workers together start
exactly the asked rate.

The windows say, for a time, whether requests scheduled (open model) or started (closed
model) then are judged (not in the warm-up, nor in a stage with ``judge: false``), and which
stage they belong to.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..plan import LoadPlan, PlannedStage

__all__ = ["Schedule", "Slot", "Slots", "Window", "Windows", "stage_bounds"]


@dataclass(frozen=True)
class _Segment:
    start: float
    end: float
    level_from: float
    level_to: float
    due_before: float  # N(start)

    @property
    def slope(self) -> float:
        span = self.end - self.start
        return (self.level_to - self.level_from) / span if span > 0 else 0.0

    def due_at(self, t: float) -> float:
        """N(t) for ``start <= t <= end``."""
        x = t - self.start
        return self.due_before + self.level_from * x + 0.5 * self.slope * x * x

    def time_of(self, i: float) -> float:
        """The t in this segment where N(t) = i (``due_before <= i <= N(end)``)."""
        m = i - self.due_before
        if m <= 0:
            return self.start
        a, s = self.level_from, self.slope
        # s/2 x^2 + a x - m = 0; this form is stable for either sign of s and for a = 0
        root = math.sqrt(max(0.0, a * a + 2.0 * s * m))
        if a + root <= 0:
            return self.end
        return min(self.end, self.start + 2.0 * m / (a + root))


def stage_bounds(stages: Sequence[PlannedStage]) -> list[tuple[float, float, float, float]]:
    """(start, end, level from, level to) of each stage, by k6's convention: a stage ramps
    from the previous stage's level (0 before the first) to its own; the level is the stage's
    ``rate``, else its ``users``."""
    out = []
    t = 0.0
    level = 0.0
    for st in stages:
        to = st.rate if st.rate is not None else float(st.users or 0)
        out.append((t, t + st.duration, level, to))
        t += st.duration
        level = to
    return out


class Schedule:
    """When each iteration of the open model is due: ``level(t)``, ``due(t)`` = N(t) and
    ``time_of(i)`` = t_i (inf when the schedule never reaches slot ``i``)."""

    def __init__(
        self, *, rate: float | None, stages: Sequence[PlannedStage], duration: float
    ) -> None:
        if rate is not None:
            parts = [(0.0, float(duration), float(rate), float(rate))]
        else:
            parts = [b for b in stage_bounds(stages) if b[1] > b[0]]
        self.segments: list[_Segment] = []
        n = 0.0
        for start, end, lo, hi in parts:
            seg = _Segment(start, end, max(0.0, lo), max(0.0, hi), n)
            self.segments.append(seg)
            n = seg.due_at(end)
        self.total = n  # N at the schedule's end
        self.end = self.segments[-1].end if self.segments else 0.0
        # slot i is due where N reaches i + first; ``count`` slots in all (module docstring)
        self.first = 0.0 if rate is not None else 1.0
        if not self.segments or n <= 0:
            self.count = 0
        elif rate is not None:  # t_i = i / rate < end
            self.count = max(0, math.ceil(n - _EPS))
        else:  # N = i + 1 <= total
            self.count = max(0, math.floor(n + _EPS))
        self._starts = [s.start for s in self.segments]
        self._ends = [s.due_at(s.end) for s in self.segments]

    @classmethod
    def of(cls, plan: LoadPlan) -> Schedule:
        return cls(rate=plan.rate, stages=plan.stages, duration=plan.duration)

    def _segment_at(self, t: float) -> _Segment | None:
        k = bisect.bisect_right(self._starts, t) - 1
        return self.segments[k] if k >= 0 else None

    def level(self, t: float) -> float:
        seg = self._segment_at(t)
        if seg is None or t >= self.end:
            return 0.0
        return seg.level_from + seg.slope * (t - seg.start)

    def due(self, t: float) -> float:
        """N(t): the iterations due by ``t`` (a real number; slot ``i`` is due once it is
        above ``i``)."""
        if t >= self.end:
            return self.total
        seg = self._segment_at(t)
        return 0.0 if seg is None else seg.due_at(t)

    def time_of(self, i: int) -> float:
        """t_i, the due time of slot ``i`` (0-based): the first t with N(t) = i + ``first``;
        inf past the schedule's ``count`` slots."""
        if i < 0 or i >= self.count:
            return math.inf
        n = min(i + self.first, self.total)
        # the first segment that reaches n: where N first equals n, flat segments skipped
        seg = self.segments[min(len(self.segments) - 1, bisect.bisect_left(self._ends, n))]
        return seg.time_of(n)

    def slots_by(self, t: float) -> int:
        """How many slots are due at or before ``t``."""
        return self.slots_before(math.nextafter(t, math.inf))

    def slots_before(self, t: float) -> int:
        """How many slots are due strictly before ``t``: the least ``c`` with t_c >= t."""
        c = min(self.count, max(0, math.ceil(self.due(t) - self.first)))
        while c > 0 and self.time_of(c - 1) >= t:
            c -= 1
        while self.time_of(c) < t:
            c += 1
        return c


@dataclass(frozen=True)
class Window:
    """A span of the run: its requests are judged or not; ``stage`` is the index of its stage
    in ``plan.stages`` (-1 without stages), ``measure`` whether that stage keeps its requests
    apart (it has budgets of its own)."""

    start: float
    end: float
    judged: bool
    stage: int = -1
    name: str = ""
    measure: bool = False


class Windows:
    """The run cut into windows by the warm-up's end and the stages' ends; the last one runs
    on to infinity (a request after the last stage's planned end belongs to it)."""

    def __init__(self, warmup: float, stages: Sequence[PlannedStage]) -> None:
        spans: list[tuple[float, float, int, PlannedStage | None]] = [
            (start, end if k < len(stages) - 1 else math.inf, k, st)
            for k, (st, (start, end, _, _)) in enumerate(
                zip(stages, stage_bounds(stages), strict=True)
            )
        ]
        if not spans:
            spans.append((0.0, math.inf, -1, None))
        out: list[Window] = []
        first = True
        for start, end, k, st in spans:
            if first:
                start, first = -math.inf, False  # anything before the start is the first's
            name = st.name if st is not None else ""
            judge = st.judge if st is not None else True
            measure = st.measure if st is not None else False
            if warmup > 0 and warmup > start:  # the warm-up part of this span
                cut = min(end, warmup)
                out.append(Window(start, cut, False, k, name, False))
                start = cut
            if end > start:
                out.append(Window(start, end, judge, k, name, measure and judge))
        self.windows = out
        self._starts = [w.start for w in out]
        self.judged = [w for w in out if w.judged]
        self._last = out[0]

    @classmethod
    def of(cls, plan: LoadPlan) -> Windows:
        return cls(plan.warmup, plan.stages)

    def at(self, t: float) -> Window:
        """The window holding ``t``: times mostly come in order, so the last one found is
        tried first."""
        w = self._last
        if w.start <= t < w.end:
            return w
        w = self._last = self.windows[max(0, bisect.bisect_right(self._starts, t) - 1)]
        return w

    def ending_at(self, t: float) -> Window:
        """The window with ``start < t <= end``: a stages schedule's slot due exactly at a
        window's edge completes the area before it, so it is that window's (a ramp down to 0
        gives its last slot to itself, not to the flat stage after it)."""
        return self.windows[max(0, bisect.bisect_left(self._starts, t) - 1)]

    def of_slot(self, t: float, first: float) -> Window:
        """The window of a slot due at ``t`` of a schedule whose slot 0 is due at N = ``first``
        (``Schedule.first``): ``at`` with a rate, ``ending_at`` with stages."""
        return self.ending_at(t) if first else self.at(t)


@dataclass(frozen=True)
class Slot:
    """One iteration to start: slot ``index`` of the whole run, due at ``due`` (epoch
    seconds), in ``window``."""

    index: int
    due: float
    window: Window


class Slots:
    """One load process's share of the schedule: the next slot for whichever user is free,
    and the counts of the judged windows' slots that were due (started or dropped) and dropped.

    ``begin`` sets the load start (epoch seconds) and this process's share (``k`` of
    ``workers``); before it, and after ``close``, ``pull`` gives None."""

    def __init__(self, schedule: Schedule, windows: Windows, lag: float) -> None:
        self.schedule = schedule
        self.windows = windows
        self.lag = lag
        self.load_start = math.nan
        self.k, self.workers = 0, 1
        self.began = False
        self.closed = False
        self.pulled = 0  # this process's slots handed out: its next is k + workers * pulled
        self.due = 0  # judged windows: slots started or dropped
        self.dropped = 0  # judged windows: slots dropped
        self._taken = (0, 0)
        # the same by stage index (judged windows of a stage): [due, dropped], so that each
        # stage's budgets are judged on its own dropped share; ``take_stage_counts``
        self.stage_counts: dict[int, list[int]] = {}
        self._stage_taken: dict[int, tuple[int, int]] = {}
        self._waiting: dict[int, Slot] = {}  # pulled, neither started nor dropped yet

    def begin(self, load_start: float, k: int = 0, workers: int = 1) -> None:
        if not 0 <= k < workers:
            raise ValueError(f"worker {k} of {workers}")
        self.load_start, self.k, self.workers = load_start, k, workers
        self.began = True

    def pull(self) -> Slot | None:
        """The next slot of this process, None when none is left (not begun, closed, or the
        schedule has ended)."""
        if not self.began or self.closed:
            return None
        i = self.k + self.workers * self.pulled
        t = self.schedule.time_of(i)
        if t == math.inf:  # past the schedule's slots
            return None
        self.pulled += 1
        window = self.windows.of_slot(t, self.schedule.first)
        slot = self._waiting[i] = Slot(i, self.load_start + t, window)
        return slot

    def started(self, slot: Slot) -> None:
        del self._waiting[slot.index]
        self._count(slot.window, 1, 0)

    def drop(self, slot: Slot) -> None:
        del self._waiting[slot.index]
        self._count(slot.window, 1, 1)

    def _count(self, window: Window, due: int, dropped: int) -> None:
        """``due`` slots of ``window``, ``dropped`` of them dropped: counted if it is judged,
        in its stage's too."""
        if not window.judged or due <= 0:
            return
        self.due += due
        self.dropped += dropped
        if window.stage >= 0:
            counts = self.stage_counts.get(window.stage)
            if counts is None:
                counts = self.stage_counts[window.stage] = [0, 0]
            counts[0] += due
            counts[1] += dropped

    def close(self, now: float) -> int:
        """No slot is handed out any more. The slots of this process nobody started although
        they were due more than the lag before ``now`` (epoch seconds) are dropped: every user
        was busy (not pulled), or the process too (pulled, its user never woke in time). Returns
        how many of them were in judged windows. So every judged slot due up to ``now`` minus
        the lag is counted in ``due``, started or dropped."""
        if self.closed or not self.began:
            self.closed = True
            return 0
        self.closed = True
        cutoff = now - self.lag
        late = 0
        for w, n in self.unpulled_by_window(now - self.load_start - self.lag):
            self._count(w, n, n)
            late += n
        for s in self._waiting.values():
            if s.window.judged and s.due <= cutoff:
                self._count(s.window, 1, 1)
                late += 1
        self._waiting.clear()
        return late

    def unpulled_judged(self, until: float) -> int:
        """This process's slots not pulled yet, due at or before ``until`` (seconds from the
        load start), in judged windows."""
        return sum(n for _, n in self.unpulled_by_window(until))

    def unpulled_by_window(self, until: float) -> list[tuple[Window, int]]:
        """``unpulled_judged`` by judged window."""
        first = self.k + self.workers * self.pulled  # the first unpulled global slot
        out = []
        sched = self.schedule
        for w in self.windows.judged:
            if sched.first:  # start < t_i <= end (Windows.ending_at)
                lo = sched.slots_by(w.start) if w.start > -math.inf else 0
                hi = sched.slots_by(min(w.end, until))
            else:  # start <= t_i < end
                lo = sched.slots_before(w.start) if w.start > -math.inf else 0
                hi = sched.slots_before(min(w.end, math.nextafter(until, math.inf)))
            out.append((w, _own(max(lo, first), hi, self.k, self.workers)))
        return out

    def take_counts(self) -> tuple[int, int]:
        """(due, dropped) since the last call (a worker's report)."""
        due, dropped = self.due - self._taken[0], self.dropped - self._taken[1]
        self._taken = (self.due, self.dropped)
        return due, dropped

    def take_stage_counts(self) -> dict[int, tuple[int, int]]:
        """Each stage's (due, dropped) since the last call, the stages with any (a worker's
        report)."""
        out = {}
        for k, (due, dropped) in self.stage_counts.items():
            was = self._stage_taken.get(k, (0, 0))
            if (due, dropped) != was:
                out[k] = (due - was[0], dropped - was[1])
                self._stage_taken[k] = (due, dropped)
        return out


_EPS = 1e-9  # a schedule's area within this of a whole number is that number


def _own(lo: int, hi: int, k: int, workers: int) -> int:
    """How many i in [lo, hi) have i % workers == k."""
    if hi <= lo:
        return 0
    return (hi - k + workers - 1) // workers - (lo - k + workers - 1) // workers
