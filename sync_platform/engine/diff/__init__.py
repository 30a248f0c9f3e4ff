"""Data diffs between a source slice and a target slice, each possibly on another dialect.

countdiff  row counts of both sides, queried in parallel
md5diff    count + order-independent checksum of each whole slice, computed inside each database
hashdiff   bisection on segment checksums down to bisection_threshold rows, then the rows
           themselves: up to `limit` differing keys, each missing / extra / changed (with columns)

All three compare values through the normalisation contract (../columns.py), rendered as text by
each dialect's `canonical_text_sql` so that the same value gives the same text everywhere:
integers in decimal; decimals without trailing zeros (1.50 = 1.5, -0.00 = 0); floats to 15
significant digits in C's %.14e form (the documented float rule: doubles that agree to 15
significant digits compare equal; -0.0 = 0.0); booleans 1/0; dates YYYY-MM-DD; timestamps
YYYY-MM-DD HH:MM:SS.ffffff, timestamptz in UTC; times HH:MM:SS.ffffff; binary lowercase hex; uuid
lowercase; strings and JSON text as they are. NULL is never equal to any text (see queries.py for
the row encoding). A naive timestamp compared with a timestamptz is read as wall-clock time in its
side's time zone (the task's source_timezone) and compared as a UTC instant.

Row hashes: md5 of the encoded canonical row (cut to 60 bits) whenever the two sides are different
databases. Between two databases of one dialect with a native row hash (PostgreSQL:
hash_record_extended), columns whose typed equality IS the contract's equality (integers of any
width, numeric, text, bool, date, timestamp(tz), time, bytea, uuid) are hashed as typed values and
the others (floats, json, mismatched kinds) as canonical text in the same row: measured on lineitem
SF1, 2.8 s a pass instead of 13.3 s. Checksums only decide which segments to open; the rows
themselves are always compared as canonical text.
"""

from .algorithms import count_diff, diff
from .values import (
    ALGORITHMS,
    DiffError,
    DiffOptions,
    DiffResult,
    RowDiff,
    RowKind,
    Side,
)

__all__ = ["ALGORITHMS", "DiffError", "DiffOptions", "DiffResult", "RowDiff", "RowKind", "Side", "count_diff", "diff"]
