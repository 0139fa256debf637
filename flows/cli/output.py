"""Writing to the operator's terminal or pipe when its reader may already be gone."""

from __future__ import annotations

import os
import sys


def discard_stdout() -> None:
    """The reader of stdout closed the pipe (`jvn stats | head -1`): send what is still
    buffered, and all later output, to /dev/null, so that no flush fails again.

    Python's recipe (docs of `signal`, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
