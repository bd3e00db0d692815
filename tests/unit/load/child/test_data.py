"""The data file's row feeders (load/child/data.py), in process."""

from __future__ import annotations

import pytest

from pytest_stagegate.load.child.data import Feeder, exhausted_reason
from pytest_stagegate.load.plan import LoadPlan

ROWS = [{"sku": f"s{i}"} for i in range(10)]


def skus(feeder: Feeder, n: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(n):
        row = feeder.take()
        out.append(None if row is None else row["sku"])
    return out


def test_cycle_wraps_in_order_from_the_share_offset() -> None:
    local = Feeder(ROWS, "cycle")
    assert skus(local, 12) == [f"s{i}" for i in range(10)] + ["s0", "s1"]
    worker = Feeder(ROWS, "cycle")
    worker.share(1, 3)
    assert skus(worker, 8) == ["s3", "s4", "s5", "s6", "s7", "s8", "s9", "s0"]
    assert not worker.ran_out and worker.taken == 8


def test_random_draws_with_replacement_from_the_rows() -> None:
    feeder = Feeder(ROWS, "random", seed=3)
    drawn = skus(feeder, 200)
    assert set(drawn) == {f"s{i}" for i in range(10)}  # 200 draws of 10: all seen (seeded)
    assert feeder.taken == 200


def test_unique_rows_are_never_handed_out_twice_across_workers() -> None:
    workers = [Feeder(ROWS, "unique") for _ in range(3)]
    for k, feeder in enumerate(workers):
        feeder.share(k, 3)
    handed: list[str] = []
    for _ in range(5):  # round after round, more than the rows
        for feeder in workers:
            row = feeder.take()
            if row is not None:
                handed.append(row["sku"])
    assert sorted(handed) == sorted(r["sku"] for r in ROWS)
    assert all(f.ran_out for f in workers)
    assert [f.taken for f in workers] == [4, 3, 3]


def test_unique_runs_out_locally_and_stays_out() -> None:
    feeder = Feeder(ROWS[:2], "unique")
    assert skus(feeder, 4) == ["s0", "s1", None, None]
    assert feeder.ran_out and feeder.taken == 2
    assert feeder.take_count() == 2 and feeder.take_count() == 0


def test_a_waiting_worker_hands_out_nothing_until_its_share_is_known() -> None:
    feeder = Feeder(ROWS, "unique")
    feeder.waiting = True
    assert feeder.take() is None and not feeder.ran_out and feeder.taken == 0
    feeder.share(1, 2)
    assert skus(feeder, 2) == ["s1", "s3"]


def test_bad_share_and_mode() -> None:
    with pytest.raises(ValueError):
        Feeder(ROWS, "cycle").share(2, 2)
    with pytest.raises(ValueError):
        Feeder(ROWS, "sequential")


def test_exhausted_reason_is_plain() -> None:
    plan = LoadPlan(
        host="http://x", users=1, spawn_rate=1, duration=5, data_file="users.csv",
        data_mode="unique", data_rows=[{"u": str(i)} for i in range(1000)],
    )  # fmt: skip
    assert exhausted_reason(plan, 1000) == (
        "The data file users.csv ran out of unique rows after 1,000 iterations (data mode "
        "unique: each of its 1,000 rows is used once at most), before the gate's duration was "
        "over; the verdict judges what ran."
    )


def test_a_closed_feeder_hands_out_no_row_whatever_its_share_holds() -> None:
    # another process's unique rows ran out: the load ends, this one takes no more
    feeder = Feeder(ROWS, "unique")
    feeder.share(0, 2)
    assert feeder.take() is not None
    feeder.close()
    assert feeder.take() is None and feeder.ran_out and feeder.taken == 1
