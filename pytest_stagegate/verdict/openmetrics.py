"""The verdict as an OpenMetrics text file (``--gate-metrics PATH``), for GitLab's
``artifacts: reports: metrics:`` (shown in the merge request, compared with the target
branch) or any Prometheus-format reader. Pure: the verdict's data in, text out.

Every family is a gauge (the numbers of one run, not counters that grow across runs), every
sample carries the ``target`` label, and the per-endpoint ones an ``endpoint`` label (a request
name, or ``total``). Latencies are in seconds, as OpenMetrics prefers (the verdict's ms / 1000):

    stagegate_verdict{state}                 1 for the verdict's state, 0 for the other three
    stagegate_promote                        1 when the verdict promotes
    stagegate_run_duration_seconds           from the run's start to its verdict
    stagegate_tests{outcome}                 tests by outcome (passed, failed, errors, skipped, ...)
    stagegate_load_seconds                   how long the load ran
    stagegate_latency_seconds{endpoint,quantile}   p50, p90, p95, p99 (every percentile measured)
    stagegate_latency_avg_seconds, stagegate_latency_max_seconds   {endpoint}
    stagegate_requests, stagegate_failures, stagegate_timeouts     {endpoint}
    stagegate_error_ratio{endpoint}          failures / requests
    stagegate_throughput_rps{endpoint}       successful responses per second
    stagegate_check{endpoint,metric,stage,outcome}   1 for the check's outcome, 0 for the others

A value the verdict does not have (no latency without a successful request) is left out, never
written as 0 or NaN. Label values go through ``redact`` and are escaped (backslash, double
quote, newline); the text ends with ``# EOF``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["escape_label", "render"]

_STATES = ("pass", "fail", "error", "inconclusive")
_OUTCOMES = ("pass", "fail", "inconclusive")
_TEST_COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky")

# name, help, what of an endpoint's data (a key, or a function of it)
_ENDPOINT_FAMILIES: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any]], ...] = (
    (
        "stagegate_latency_avg_seconds",
        "Mean latency of successful and timed-out requests, warm-up excluded.",
        lambda e: _seconds(e.get("avg_ms")),
    ),
    (
        "stagegate_latency_max_seconds",
        "Maximum latency of successful and timed-out requests, warm-up excluded.",
        lambda e: _seconds(e.get("max_ms")),
    ),
    ("stagegate_requests", "Requests made, warm-up excluded.", lambda e: e.get("requests")),
    ("stagegate_failures", "Failed requests (timeouts included).", lambda e: e.get("failures")),
    ("stagegate_timeouts", "Requests that timed out.", lambda e: e.get("timeouts")),
    ("stagegate_error_ratio", "Failed requests / requests.", lambda e: e.get("error_rate")),
    (
        "stagegate_throughput_rps",
        "Successful responses per second.",
        lambda e: e.get("rps"),
    ),
)


def escape_label(value: str) -> str:
    """A label value as OpenMetrics writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Any) -> str | None:
    """``value`` as an OpenMetrics number, or None when there is none (None, NaN, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return None
    return repr(float(value))


def _seconds(ms: Any) -> float | None:
    """Milliseconds as seconds rounded to the microsecond, the verdict's own precision (its
    ms to 3 decimals): 1.084 ms is ``0.001084``, not the float noise of the division
    (``0.0010840000000000001``)."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        return None
    seconds = float(ms) / 1000.0
    return round(seconds, 6) if math.isfinite(seconds) else seconds


def _quantile(key: str) -> str | None:
    """``p95`` -> ``0.95``, ``p99.9`` -> ``0.999``; None for a key that is no percentile."""
    if not key.startswith("p"):
        return None
    try:
        percent = float(key[1:])
    except ValueError:
        return None
    return format(percent / 100, ".6g") if 0 < percent < 100 else None


class _Family:
    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.samples: list[str] = []
        self._seen: set[str] = set()

    def add(self, labels: Mapping[str, str], value: Any) -> None:
        number = _number(value)
        if number is None:
            return
        text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
        if text in self._seen:  # one sample a label set (a hook's check may repeat a budget's)
            return
        self._seen.add(text)
        self.samples.append(f"{self.name}{{{text}}} {number}")

    def lines(self) -> Iterable[str]:
        if not self.samples:
            return
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} gauge"
        yield from self.samples


def render(data: Mapping[str, Any], *, redact: Callable[[str], str] = str) -> str:
    """The OpenMetrics text of the verdict ``data`` (``Verdict.to_dict()``), ``# EOF`` last."""
    target = redact(str((data.get("target") or {}).get("name", "")))
    base = {"target": target}
    families: list[_Family] = []

    def family(name: str, help_text: str) -> _Family:
        made = _Family(name, help_text)
        families.append(made)
        return made

    state = data.get("verdict")
    verdict = family("stagegate_verdict", "1 for the verdict's state, 0 for the others.")
    for each in _STATES:
        verdict.add({**base, "state": each}, int(each == state))
    family("stagegate_promote", "1 when the verdict promotes the deployment.").add(
        base, int(bool(data.get("promote")))
    )
    family("stagegate_run_duration_seconds", "Time from the run's start to its verdict.").add(
        base, data.get("duration_s")
    )
    tests = data.get("tests") or {}
    counts = family("stagegate_tests", "Tests by outcome.")
    for outcome in _TEST_COUNTS:
        counts.add({**base, "outcome": outcome}, tests.get(outcome))

    gate = data.get("gate") or {}
    family("stagegate_load_seconds", "How long the load ran.").add(
        base, gate.get("load_seconds") if gate.get("status") else None
    )
    endpoints = [e for e in gate.get("endpoints") or () if isinstance(e, Mapping)]
    latency = family(
        "stagegate_latency_seconds",
        "Latency percentiles of successful and timed-out requests, warm-up excluded.",
    )
    for e in endpoints:
        labels = {**base, "endpoint": redact(str(e.get("name", "")))}
        percentiles = e.get("percentiles") or {}
        ranked = sorted(
            ((q, key) for key in percentiles if (q := _quantile(str(key))) is not None),
            key=lambda pair: float(pair[0]),
        )
        for q, key in ranked:
            latency.add({**labels, "quantile": q}, _seconds(percentiles[key]))
    for name, help_text, value in _ENDPOINT_FAMILIES:
        made = family(name, help_text)
        for e in endpoints:
            made.add({**base, "endpoint": redact(str(e.get("name", "")))}, value(e))

    check_family = family(
        "stagegate_check", "1 for a budget check's outcome, 0 for the other outcomes."
    )
    for c in [*(gate.get("checks") or ()), *(data.get("checks") or ())]:
        labels = {
            **base,
            "endpoint": redact(str(c.get("endpoint", ""))),
            "metric": redact(str(c.get("metric", ""))),
            "stage": redact(str(c.get("stage", ""))),
        }
        for outcome in _OUTCOMES:
            check_family.add({**labels, "outcome": outcome}, int(c.get("outcome") == outcome))

    out = [line for f in families for line in f.lines()]
    out.append("# EOF")
    return "\n".join(out) + "\n"
