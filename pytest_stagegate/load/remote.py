"""``stagegate worker``: a Locust worker on another machine, for a gated run's master.

The worker builds its load plan from its own stagegate.yaml and environment (so secrets never
travel between machines), then runs the load child in Locust's worker mode against the master
that ``pytest --gate --gate-remote-workers N --gate-master-bind HOST:PORT`` started. It measures
exactly like a local worker (precise histograms, CPU), reports to the master, and exits when
the master ends the run. It proves ``$STAGEGATE_WORKER_TOKEN`` to the master before anything
else (load/child/handshake.py) and obeys only a master that proves it back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ..config import load_config
from ..errors import StagegateError
from .plan import load_path_problem, plan_for
from .process import CHILD_MODULE
from .worker_token import ENV as WORKER_TOKEN_ENV
from .worker_token import missing_token_paragraph

# Locust's own worker gives up on a silent master after 60 s; this is the outer bound.
MASTER_WAIT = 90.0


def run_worker(
    *,
    config_path: Path,
    target_name: str,
    master_host: str,
    master_port: int,
    environ: Mapping[str, str] = os.environ,
) -> int:
    paragraph = missing_token_paragraph("stagegate worker", environ)
    if paragraph is not None:
        raise StagegateError(paragraph)
    load_path = load_path_problem(environ, "stagegate worker")
    if load_path is not None:
        raise StagegateError(load_path)
    config = load_config(config_path)
    target = config.resolve_target(target_name, environ)
    settings = config.gate_settings(target_name)
    if not settings.load.has_scenario:
        raise StagegateError(
            f"{config_path}: gate.load has no scenario (requests, flows or locustfile) for a "
            "worker to run"
        )
    plan = plan_for(target, settings)
    bound = MASTER_WAIT + plan.duration + settings.load.abort.grace
    print(
        f"stagegate worker: {plan.users} users' share of target {target.name!r} for the master "
        f"at {master_host}:{master_port} (gives up after {bound:.0f} s)",
        file=sys.stderr,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", CHILD_MODULE, "--mode", "worker",
         "--master-host", master_host, "--master-port", str(master_port)],
        stdin=subprocess.PIPE,
        # the token in the child's environment only, never on its command line
        env={**os.environ, WORKER_TOKEN_ENV: environ[WORKER_TOKEN_ENV]},
    )  # fmt: skip
    assert proc.stdin is not None
    try:
        proc.stdin.write(plan.to_json().encode("utf-8"))
        proc.stdin.close()
        return proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        print(
            f"stagegate worker: no load run from a master at {master_host}:{master_port} "
            f"within {bound:.0f} s; giving up.",
            file=sys.stderr,
        )
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
