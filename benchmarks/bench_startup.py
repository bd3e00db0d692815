"""What the plugin costs a pytest run that does not use it (no stagegate.yaml).

Prints the median wall time of `pytest --collect-only` on a small project with the plugin
installed and with it disabled (`-p no:stagegate`), run alternately in the same invocation,
and their ratio (1.00 = free).

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_a.py").write_text(
            "".join(f"def test_{i}():\n    pass\n" for i in range(50))
        )
        base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        with_plugin, without = [], []
        timed(base, project)  # warm the file cache
        for _ in range(args.runs):
            with_plugin.append(timed(base, project))
            without.append(timed([*base, "-p", "no:stagegate"], project))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest --collect-only, plugin inert:    {a * 1000:7.1f} ms (median of {args.runs})")
    print(f"pytest --collect-only, -p no:stagegate: {b * 1000:7.1f} ms")
    print(f"ratio (inert plugin / no plugin):       {a / b:7.3f}")


if __name__ == "__main__":
    main()
