"""Named SQL blocks kept in ``PACKAGE/sql/*.sql``, loaded once with importlib.resources.

A block starts with a line ``-- name: NAME`` and runs to the next such line.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["queries"]

_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


@cache
def queries(dialect: str, package: str = "ledger") -> dict[str, str]:
    """The named blocks of ``PACKAGE/sql/DIALECT.sql``.

    >>> "head" in queries("sqlite")
    True
    """
    text = resources.files(package).joinpath("sql", f"{dialect}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    blocks = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not blocks:
        raise LookupError(f"{package}/sql/{dialect}.sql has no '-- name:' blocks")
    return blocks
