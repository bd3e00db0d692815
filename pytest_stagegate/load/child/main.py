"""The child's command line: read the plan from stdin, run it in the chosen mode, write the
result (``python -m pytest_stagegate.load.child``; docs/load-engine.md)."""

from __future__ import annotations

# isort: off
# Locust first: it monkey-patches the standard library (docs/load-engine.md).
from . import locust_setup

# isort: on
import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from ... import defaults
from ..._atomic import atomic_write_text
from ..._redact import Redactor
from ..plan import LoadPlan
from ..result import LoadResult
from .assemble import error_result
from .captured import GrowingRedactor
from .controller import Controller
from .failure import EXIT_FAILED, EXIT_OK, LoadFailure, last_line
from .live_metrics import LiveMetrics, header_values
from .output import EventStream, setup_io
from .worker import run_worker

__all__ = ["main", "parse_args"]

log = logging.getLogger("pytest_stagegate.load")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_stagegate.load.child")
    parser.add_argument("--result", type=Path, help="where to write the result JSON")
    parser.add_argument("--mode", choices=("local", "master", "worker"), default="local")
    parser.add_argument("--workers", type=int, default=0, help="workers the master waits for")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=defaults.MASTER_PORT)
    parser.add_argument(
        "--shared-clock",
        action="store_true",
        help="worker: this machine is the master's; use its absolute warm-up end",
    )
    args = parser.parse_args(argv)
    if args.mode != "worker" and args.result is None:
        parser.error("--result is required in local and master mode")
    if args.mode == "master" and args.workers < 1:
        parser.error("--workers must be at least 1 in master mode")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    text = sys.stdin.read()
    plan: LoadPlan | None = None
    redact = Redactor([])
    try:
        plan = LoadPlan.from_json(text)
        # plan.secrets hold the data file's values (plan_for); captured ones join as they come
        # the OTLP exporter's header values too, when metrics go out live (a token, maybe)
        redact = GrowingRedactor([*plan.secrets, *(header_values(os.environ) if plan.otel else ())])
    except Exception as e:
        setup_io(redact)
        reason = f"The load plan could not be read: {last_line(e)}"
        log.error(reason)
        return _finish(args, error_result(None, reason, args.workers, time.time()), EXIT_OK)
    out = setup_io(redact)
    locust_setup.install_locust_settings()
    # before the environment and its listeners: OpenTelemetry's request listener counts
    live = LiveMetrics.start(plan, args.mode, redact)
    if args.mode == "worker":
        try:
            return run_worker(plan, args)
        except LoadFailure as e:  # the master hits the same problem and reports it
            log.error("%s", redact(str(e)))
        except BaseException:
            log.error("The load worker failed:\n%s", traceback.format_exc())
        finally:
            if live is not None:
                live.stop()
        return EXIT_FAILED
    controller = Controller(plan, args, EventStream(out), redact)
    try:
        result = controller.run()
        code = EXIT_OK
    except LoadFailure as e:
        result = error_result(plan, redact(str(e)), controller.expected_workers, time.time())
        code = e.exit_code
    except BaseException as e:  # never leave without a result: the parent judges by it
        log.error("The load run failed:\n%s", traceback.format_exc())
        reason = redact(f"The load run failed: {last_line(e)}")
        result = error_result(plan, reason, args.workers, time.time())
        code = EXIT_OK
    code = _finish(args, result, code)
    if live is not None:
        live.stop()  # after the result is written: a slow endpoint never costs the verdict
    return code


def _finish(args: argparse.Namespace, result: LoadResult, code: int) -> int:
    if args.result is None:
        return code if code else EXIT_FAILED
    total = result.total
    log.info(
        "Load %s after %.1f s: %s measured requests, %s failed. %s",
        result.status,
        result.load_seconds,
        total.requests,
        total.failures,
        result.reason,
    )
    try:
        atomic_write_text(args.result, json.dumps(result.to_dict()))
    except OSError as e:
        log.error("Could not write the result to %s: %s", args.result, e)
        return EXIT_FAILED
    return code
