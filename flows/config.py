"""Settings that come from the environment rather than the command line."""

from __future__ import annotations

import os
from pathlib import Path

KEY_VARIABLE = "JVN_PSEUDONYM_KEY"
KEY_FILE_VARIABLE = "JVN_PSEUDONYM_KEY_FILE"
_MIN_KEY_LENGTH = 16


class ConfigError(Exception):
    """Bad arguments or configuration: the command exits 2 with this one-line message."""


def pseudonym_key() -> str:
    """The analysts' pseudonym key, from JVN_PSEUDONYM_KEY or the file JVN_PSEUDONYM_KEY_FILE.

    There is no default: without a key the analysts' database cannot be built
    without either leaking the personnummer or breaking keys across runs.
    """
    value = os.environ.get(KEY_VARIABLE)
    if not value and os.environ.get(KEY_FILE_VARIABLE):
        path = Path(os.environ[KEY_FILE_VARIABLE])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigError(f"{KEY_FILE_VARIABLE} names a file that cannot be read") from None
    if not value:
        raise ConfigError(
            f"no pseudonym key: set {KEY_VARIABLE} or {KEY_FILE_VARIABLE} "
            "(the analysts' patient_key is a keyed hash and needs it)"
        )
    if len(value) < _MIN_KEY_LENGTH:
        raise ConfigError(f"the pseudonym key is shorter than {_MIN_KEY_LENGTH} characters")
    return value
