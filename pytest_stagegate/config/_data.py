"""``gate.load.data``: reading the data file, a CSV with a header row.

Read twice on purpose: when stagegate.yaml is loaded, to check it (the header, that every row
has a value per column, at most ``defaults.MAX_DATA_ROWS`` rows) and to know its columns for the
``{row.COLUMN}`` templates; and by ``load.plan.plan_for``, which puts the rows in the plan (the
load child gets them on its standard input, never from the file).

Rules, decided here:

- UTF-8 (a byte-order mark is skipped), the ``csv`` module's default dialect (commas, ``"``
  quoting, a quoted value may hold commas and line breaks).
- The first row names the columns; a name is stripped of surrounding spaces and must be
  non-empty and unique. Values are kept exactly as written.
- Empty lines are skipped; every other row has exactly one value per column. A file without
  any row after the header is an error (nothing to hand out).
- The values of a secret column are secrets (``data_secrets``): a column whose name looks secret
  (``secret_column``: password, passwd, secret, token, key, auth, credential, session or cookie
  as a part of the name, case-insensitive) or one listed in ``data: {secret: [COLUMN, ...]}``.
  Other columns (a product name, a SKU) are plain data: masking them would also mask every
  request name, path or message that happens to hold the same word (``products`` in ``GET
  /api/products``). A value is masked if masking it is possible: at least ``MIN_SECRET_LENGTH``
  (4) characters and 3 distinct ones (``_redact``'s rule); shorter values cannot be hidden
  without destroying the output (and are not counted as unmaskable).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import defaults
from .._redact import MIN_DISTINCT, MIN_SECRET_LENGTH

__all__ = ["DataError", "DataFile", "data_secrets", "read_data", "secret_column"]

# The words that make a column's values secrets, as a part of its name: "password",
# "user_password", "apiKey", "AuthToken", "session_id" (not "monkey": a part is delimited by the
# name's start or end, a non-letter or a lower-to-upper case change).
SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "session",
    "cookie",
)


def _name_parts(column: str) -> list[str]:
    """``column`` split into lower-case words: ``apiKey`` -> api, key; ``user_pass`` -> user,
    pass; ``X-Auth-Token`` -> x, auth, token."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", column)
    return [part.lower() for part in re.split(r"[^A-Za-z]+", spaced) if part]


def secret_column(column: str) -> bool:
    """Whether the name ``column`` looks like a secret's: one of its parts is one of
    ``SECRET_WORDS`` or its plural (case-insensitive)."""
    return any(
        part in SECRET_WORDS or (part.endswith("s") and part[:-1] in SECRET_WORDS)
        for part in _name_parts(column)
    )


class DataError(ValueError):
    """The data file cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class DataFile:
    columns: tuple[str, ...]
    rows: list[dict[str, str]]


def read_data(path: Path, *, max_rows: int | None = None) -> DataFile:
    """The columns and rows of the CSV file ``path`` (at most ``max_rows``, by default
    ``defaults.MAX_DATA_ROWS``). Raises ``DataError``."""
    name = path.name
    if max_rows is None:
        max_rows = defaults.MAX_DATA_ROWS
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise DataError(
                    f"{name} is empty: its first line must name the columns, such as "
                    "'user,sku', and the rows follow"
                )
            columns = tuple(cell.strip() for cell in header)
            for i, column in enumerate(columns):
                if not column:
                    raise DataError(
                        f"{name} line 1: column {i + 1} has no name; name every column in the "
                        "header row, such as 'user,sku'"
                    )
                if column in columns[:i]:
                    raise DataError(
                        f"{name} line 1: two columns are named {column!r}; column names must "
                        "be unique ({row.COLUMN} picks one)"
                    )
            rows: list[dict[str, str]] = []
            for values in reader:
                if not values:
                    continue  # an empty line
                if len(values) != len(columns):
                    raise DataError(
                        f"{name} line {reader.line_num}: {len(values)} value"
                        f"{'' if len(values) == 1 else 's'} for {len(columns)} columns "
                        f"({', '.join(columns)}); every row has one value per column (quote a "
                        "value that holds a comma)"
                    )
                if len(rows) == max_rows:
                    raise DataError(
                        f"{name} has more than {max_rows:,} rows, the most a data file may "
                        "have (the rows travel in the load plan); use a sample of them"
                    )
                rows.append(dict(zip(columns, values, strict=True)))
    except UnicodeDecodeError as error:
        raise DataError(
            f"{name} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except csv.Error as error:
        raise DataError(f"{name} line {reader.line_num}: not valid CSV: {error}") from None
    except FileNotFoundError:
        raise DataError(f"{name} not found (looked for {path})") from None
    except IsADirectoryError:
        raise DataError(f"{name} is a directory, not a CSV file ({path})") from None
    except OSError as error:
        raise DataError(f"cannot read {name}: {error.strerror or error}") from None
    if not rows:
        raise DataError(
            f"{name} has a header ({', '.join(columns)}) but no rows: nothing to hand out"
        )
    return DataFile(columns, rows)


def data_secrets(rows: Iterable[Mapping[str, str]], secret: Iterable[str] = ()) -> frozenset[str]:
    """Every value of ``rows`` in a secret column that can be masked: a column whose name looks
    secret (``secret_column``) or one of ``secret`` (``data: {secret: [...]}``)."""
    listed = frozenset(secret)
    return frozenset(
        value
        for row in rows
        for column, value in row.items()
        if (column in listed or secret_column(column))
        and len(value) >= MIN_SECRET_LENGTH
        and len(set(value)) >= MIN_DISTINCT
    )
