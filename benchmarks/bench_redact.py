"""What redacting one line of output costs with many secrets: a data file's 100,000 values.

    python benchmarks/bench_redact.py [--sizes 10,1000,100000] [--no-reference]

For each kind of value (short ones of 4-7 characters, masked as whole tokens; UUIDs and e-mail
addresses, masked by their runs of 8) and each number of secrets: the time to build the
``Redactor`` and the memory it holds (tracemalloc, in a second build), then the cost per line
over a mix of output lines (a Locust log line, a pytest assertion, a line holding one of the
secrets), next to the same for the implementation before 0.2 (one regular expression of every
short form, a set of every run of 8: tests/unit/redact_reference.py) in the same invocation.
Both must give the same output on every line (checked).

``--data-file ROWS``: what a data file of ROWS rows (an e-mail, a UUID token, a 4-digit PIN
and a short nickname per row, every column a secret one) adds to the start of a run, step by
step as the pytest side does it: stagegate.yaml loaded (the file read and checked), its secrets
read again (``load.plan.data_secrets``), the run's redactor built; then the cost per line.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
import uuid
from collections.abc import Callable

from _common import ROOT  # noqa: F401  (puts the project on sys.path)

from pytest_stagegate._redact import Redactor
from tests.unit.redact_reference import ReferenceRedactor


def values(kind: str, n: int) -> list[str]:
    rnd = random.Random(n)
    if kind == "short":
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return ["".join(rnd.choices(alphabet, k=rnd.randint(4, 7))) for _ in range(n)]
    if kind == "uuid":
        return [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(n)]
    names = ["smith", "jones", "li", "garcia", "müller"]
    return [
        f"user{rnd.randrange(10**6)}.{rnd.choice(names)}@example{rnd.randrange(100)}.com"
        for _ in range(n)
    ]


def lines(secrets: list[str]) -> list[str]:
    secret = secrets[len(secrets) // 2]
    return [
        "2026-12-02T04:40:00Z INFO locust.runners: Ramping to 50 users at a rate of 10.00 per "
        "second; GET /api/products?sku=abc123 200 12ms",
        "E       AssertionError: assert 'checkout-ok' == 'checkout-failed' (status 503)",
        f"E       AssertionError: assert {secret!r} == 'expected'",
        f"[2026-12-02 04:40:01] POST /api/cart user={secret} -> 201 in 34 ms",
        "    def test_checkout(shop, data_row):",
    ]


def per_line(redact: Callable[[str], str], texts: list[str], seconds: float) -> float:
    """Seconds per line, the lines redacted in turn for about ``seconds``."""
    done, started = 0, time.perf_counter()
    while True:
        for text in texts:
            redact(text)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / done


def built(cls: Callable[[list[str]], Callable[[str], str]], secrets: list[str]) -> tuple:
    started = time.perf_counter()
    redactor = cls(secrets)
    return redactor, time.perf_counter() - started


def held_mb(cls: Callable[[list[str]], object], secrets: list[str]) -> float:
    tracemalloc.start()
    redactor = cls(secrets)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del redactor
    return size / 2**20


def data_file_start(rows: int) -> None:
    import tempfile
    from pathlib import Path

    from pytest_stagegate.config import load_config
    from pytest_stagegate.load.plan import data_secrets

    rnd = random.Random(rows)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "users.csv"
        lines_ = ["email,token,pin,nick"]
        for i in range(rows):
            token = uuid.UUID(int=rnd.getrandbits(128))
            lines_.append(f"user{i}@example.com,{token},{rnd.randrange(10**4):04d},n{i % 99999:x}")
        csv_path.write_text("\n".join(lines_) + "\n")
        (Path(tmp) / "stagegate.yaml").write_text(
            "targets:\n  local: {base_url: 'http://127.0.0.1:1'}\n"
            "gate:\n  load:\n    data: {file: users.csv, secret: [email, token, pin, nick]}\n"
            "    requests: [{path: /login, query: {u: '{row.email}'}}]\n"
        )
        started = time.perf_counter()
        config = load_config(Path(tmp) / "stagegate.yaml")
        settings = config.gate_settings("local")
        loaded = time.perf_counter()
        secrets = data_secrets(settings.load)
        read = time.perf_counter()
        redactor = Redactor(secrets)
        built_at = time.perf_counter()
        mb = held_mb(Redactor, sorted(secrets))
        cost = per_line(redactor, lines(sorted(secrets)), 1.0)
    print(
        f"data file of {rows:,} rows ({len(secrets):,} secret values): stagegate.yaml loaded "
        f"{loaded - started:.2f} s, secrets read {read - loaded:.2f} s, redactor built "
        f"{built_at - read:.2f} s ({mb:.0f} MB held), {cost * 1e6:.1f} us per line"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--kinds", default="short,uuid,email")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    parser.add_argument("--data-file", type=int, metavar="ROWS", help="see the docstring")
    args = parser.parse_args()
    if args.data_file:
        data_file_start(args.data_file)
        return
    print(
        f"{'kind':6} {'secrets':>8} | {'build s':>8} {'held MB':>8} {'per line':>10} | "
        f"{'old build':>9} {'old line':>10} {'old/new':>8}"
    )
    for kind in args.kinds.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            secrets = values(kind, n)
            texts = lines(secrets)
            new, build = built(Redactor, secrets)
            mb = held_mb(Redactor, secrets)
            cost = per_line(new, texts, args.seconds)
            row = f"{kind:6} {n:>8,} | {build:>8.2f} {mb:>8.1f} {cost * 1e6:>8.1f}us | "
            if args.no_reference:
                print(row + "(no reference)")
                continue
            old, old_build = built(ReferenceRedactor, secrets)
            assert [new(t) for t in texts] == [old(t) for t in texts], "outputs differ"
            old_cost = per_line(old, texts, args.seconds)
            print(
                row + f"{old_build:>9.2f} {old_cost * 1e6:>8.1f}us {old_cost / cost:>7.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
