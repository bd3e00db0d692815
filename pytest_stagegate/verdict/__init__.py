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
    MAX_VERDICT_BYTES,
    SIGNATURE_ALG,
    SIGNATURE_FIELD,
    VerdictError,
    baseline_stats,
    canonical_bytes,
    check_signature,
    load_verdict,
    schema,
    sign_verdict,
    signing_key,
    validate_verdict,
    write_verdict,
)
from .model import Verdict, parse_timestamp, public_url
from .records import SCHEMA_VERSION, CommitInfo, GateRecord, TestRecord

__all__ = [
    "MAX_VERDICT_BYTES",
    "SCHEMA_VERSION",
    "SIGNATURE_ALG",
    "SIGNATURE_FIELD",
    "CommitInfo",
    "GateRecord",
    "TestRecord",
    "Verdict",
    "VerdictError",
    "baseline_stats",
    "canonical_bytes",
    "check_signature",
    "load_verdict",
    "parse_timestamp",
    "public_url",
    "schema",
    "sign_verdict",
    "signing_key",
    "validate_verdict",
    "write_verdict",
]
