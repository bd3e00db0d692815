"""The verdict: the model and its decision (``model``), where the commit comes from
(``commit``), and its other forms: JUnit XML (``junit``) and text or markdown (``report``).

Pure: nothing here imports pytest or locust.
"""

from .model import (
    SCHEMA_VERSION,
    CommitInfo,
    GateRecord,
    TestRecord,
    Verdict,
    VerdictError,
    baseline_stats,
    load_verdict,
    parse_timestamp,
    schema,
    validate_verdict,
    write_verdict,
)

__all__ = [
    "SCHEMA_VERSION",
    "CommitInfo",
    "GateRecord",
    "TestRecord",
    "Verdict",
    "VerdictError",
    "baseline_stats",
    "load_verdict",
    "parse_timestamp",
    "schema",
    "validate_verdict",
    "write_verdict",
]
