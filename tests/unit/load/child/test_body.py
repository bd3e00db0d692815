"""load/child/body.py: the load child reads a body to its end, at most max_body bytes, one
block at a time (pure: fed by a fake ``read``, as the scenario feeds it the client's)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_stagegate.load.child.body import BLOCK, drain, too_large


def reader(total: int | None) -> tuple[Callable[[int], bytes], list[int]]:
    """A body of ``total`` bytes (None: endless), and the sizes asked for, read by read."""
    asked: list[int] = []
    left = [total]

    def read(n: int) -> bytes:
        asked.append(n)
        if left[0] is None:
            return b"x" * n
        size = min(n, left[0])
        left[0] -= size
        return b"x" * size

    return read, asked


def test_a_body_within_the_cap_is_read_to_its_end() -> None:
    read, asked = reader(BLOCK * 2 + 10)
    assert drain(read, cap=BLOCK * 3) == (BLOCK * 2 + 10, "")
    assert asked == [BLOCK] * 4  # the last read says "the end"


def test_exactly_the_cap_is_fine() -> None:
    read, _ = reader(1000)
    assert drain(read, cap=1000) == (1000, "")


def test_an_endless_body_stops_one_block_past_the_cap() -> None:
    read, asked = reader(None)
    seen, reason = drain(read, cap=BLOCK * 10)
    assert seen == BLOCK * 11 and len(asked) == 11  # never more than one block over
    assert reason == too_large(BLOCK * 10)


def test_a_declared_length_over_the_cap_reads_nothing() -> None:
    read, asked = reader(None)
    assert drain(read, cap=1024, declared=10 * 1024**3) == (0, too_large(1024))
    assert asked == []


def test_the_reason_names_the_cap_and_the_key() -> None:
    assert too_large(16 * 1024**2) == (
        "response body larger than the target's max_body of 16MB (targets.NAME.max_body)"
    )


def test_a_small_body_of_known_length_takes_one_read() -> None:
    # the hot path of a load: one read of exactly the declared length, none to see the end
    read, asked = reader(123)
    assert drain(read, cap=BLOCK, declared=123) == (123, "")
    assert asked == [123]
    empty, asked_empty = reader(0)
    assert drain(empty, cap=BLOCK, declared=0) == (0, "")
    assert asked_empty == []


def test_a_body_shorter_than_declared_is_read_to_its_real_end() -> None:
    read, asked = reader(50)  # the server said 123 and closed after 50
    assert drain(read, cap=BLOCK, declared=123) == (50, "")
    assert asked == [123, BLOCK]


def test_collect_holds_the_body_and_bounds_it() -> None:
    from pytest_stagegate.load.child.body import collect

    read, asked = reader(10)
    assert collect(read, cap=100, declared=10) == (b"x" * 10, "")
    assert asked == [10]  # a small body of known length: one read
    read, _ = reader(BLOCK * 2 + 5)
    body, problem = collect(read, cap=BLOCK * 3)
    assert (len(body), problem) == (BLOCK * 2 + 5, "")
    read, asked = reader(None)
    assert collect(read, cap=BLOCK * 2) == (b"", too_large(BLOCK * 2))
    assert len(asked) == 3  # stops as soon as the cap is passed
    read, asked = reader(500)
    assert collect(read, cap=100, declared=500) == (b"", too_large(100))
    assert asked == []


def test_collect_decodes_gzip_and_deflate_within_the_cap() -> None:
    import gzip
    import zlib

    from pytest_stagegate.load.child.body import collect

    def once(raw: bytes) -> Callable[[int], bytes]:
        data = [raw]
        return lambda n: data.pop() if data else b""

    text = b'{"items": [1, 2, 3]}' * 10
    for encoded, coding in ((gzip.compress(text), "gzip"), (zlib.compress(text), "deflate")):
        assert collect(once(encoded), 10_000, None, coding) == (text, "")
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert collect(once(bomb), 1000, None, "gzip") == (b"", too_large(1000))
    _, problem = collect(once(b"not gzip at all"), 1000, None, "gzip")
    assert problem == "the response body could not be decoded (gzip)"
    _, problem = collect(once(b"x"), 1000, None, "br")
    assert "Content-Encoding br" in problem
