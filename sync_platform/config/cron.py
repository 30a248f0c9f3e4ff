"""Five-field cron expressions (minute hour day-of-month month day-of-week), parsed here so the
configuration can be validated without the orchestrator: numbers, `*`, ranges `a-b`, steps `/n` and
lists `a,b`; weekdays 0-7 (0 and 7 are Sunday)."""

from __future__ import annotations

import re

# (name, lowest, highest) of each field
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_PART = re.compile(r"^(?P<base>\*|\d+(?:-\d+)?)(?:/(?P<step>\d+))?$")


def field_values(text: str, low: int, high: int) -> set[int]:
    """The numbers a cron field selects; ValueError naming the part that is not valid."""
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a number, '*', a range a-b or a step /n")
        base, step = match["base"], int(match["step"] or 1)
        if step < 1:
            raise ValueError(f"step /{step} must be at least 1")
        if base == "*":
            start, end = low, high
        else:
            start, _, last = base.partition("-")
            start, end = int(start), int(last or start)
            if match["step"] and not last:  # `5/15`: from 5 to the end of the field
                end = high
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse(cron: str) -> list[set[int]]:
    """The values of each of the five fields; ValueError saying which field is wrong and why."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} fields, not 5")
    parsed = []
    for text, (name, low, high) in zip(fields, FIELDS):
        try:
            parsed.append(field_values(text, low, high))
        except ValueError as error:
            raise ValueError(f"{name} field: {error}") from None
    days, months = parsed[2], parsed[3]
    if months == {2} and days <= {30, 31}:
        raise ValueError("February has no 30th or 31st day")
    return parsed
