"""Validation of the custom WHERE clauses operators write (as the spec does: `update_time > '2024-01-01'`)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

# Root nodes that are boolean expressions; anything else (a bare column, arithmetic, a subquery
# used as a value) is refused.
_BOOLEAN_ROOTS = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Exists)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Command, exp.Merge)


def _tokens(text: str) -> list:
    try:
        return sqlglot.tokenize(text)
    except sqlglot.errors.SqlglotError:
        return []  # the parse below says what is wrong


def validate_custom_where(text: str) -> str:
    """Return `text` if it is exactly one boolean expression; raise ValueError saying why not."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("a custom WHERE cannot be empty")
    if stripped.endswith(";"):
        raise ValueError("remove the trailing ';': a custom WHERE is one expression, not a statement")
    if any(token.comments for token in _tokens(stripped)):
        # The platform appends to the WHERE (windows, keys): a `--` comment would swallow them.
        raise ValueError("remove the comment ('--' or '/* */'): a custom WHERE is one expression, without comments")
    try:
        statements = [s for s in sqlglot.parse(f"SELECT 1 FROM t WHERE {stripped}") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise ValueError(f"not a valid SQL expression: {str(error).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ValueError("several statements: a custom WHERE is one boolean expression")
    statement = statements[0]
    extra = sorted(k for k, v in statement.args.items() if v and k not in ("expressions", "from_", "from", "where"))
    if not isinstance(statement, exp.Select) or extra:
        raise ValueError(f"not a single WHERE expression (it adds {', '.join(extra) or type(statement).__name__})")
    condition = statement.args["where"].this
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if not isinstance(condition, _BOOLEAN_ROOTS):
        raise ValueError(f"not a boolean expression ({condition.sql()!r} is a {type(condition).__name__.lower()})")
    if any(isinstance(node, _WRITES) for node in statement.walk()):
        raise ValueError("a custom WHERE cannot contain a statement that writes")
    return stripped
