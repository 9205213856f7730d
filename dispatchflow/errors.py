"""Errors an operator can fix, which the command line reports as one line and exit code 1."""

from __future__ import annotations


class UserError(Exception):
    """A problem in what the operator gave or pointed at (a setting, the broker's address).

    Its message is one line that names the culprit; `dispatchflow.cli.main` prints it as
    `error: <message>` on stderr, with no traceback, and exits 1.
    """
