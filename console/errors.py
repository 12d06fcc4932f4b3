"""How the CLI reports failures: one line saying what failed and how to fix it.

Exception tree::

    click.ClickException
    └── CommandError   exit 2: usage, configuration or connection problems
"""

from __future__ import annotations

import click

__all__ = ["CommandError"]


class CommandError(click.ClickException):
    """A command could not run; exit status 2 (1 is kept for "the chain is broken")."""

    exit_code = 2
