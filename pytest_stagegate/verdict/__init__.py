"""The verdict, one concern a module:

- ``records``: what it is made of (``TestRecord``, ``GateRecord``, ``CommitInfo``);
- ``decide``: the decision policy, from records to a state and its reasons (pure);
- ``model``: ``Verdict`` and its JSON form;
- ``files``: writing, loading and validating ``stagegate-verdict.json``, the schema, baselines;
- ``commit``: where the commit under test comes from (CI environment, git);
- ``junit`` and ``report``: its other forms, JUnit XML and text or markdown.

Import the names from here. Pure: nothing here imports pytest or locust.
"""

from .files import (
    VerdictError,
    baseline_stats,
    load_verdict,
    schema,
    validate_verdict,
    write_verdict,
)
from .model import Verdict, parse_timestamp
from .records import SCHEMA_VERSION, CommitInfo, GateRecord, TestRecord

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
