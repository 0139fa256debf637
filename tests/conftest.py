"""Shared test setup: an isolated Prefect home, telemetry off, one Prefect harness.

The harness's server also serves the `jvn` processes tests start (`prefect_api_url`).

The environment is set at import time, before any test module imports Prefect,
so no test ever touches the developer's own Prefect database.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="jvn-test-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

TEST_PSEUDONYM_KEY = "test-only-pseudonym-key-0123456789"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (starting one costs seconds).

    Flow run heartbeats are off: they let a long-lived server notice a crashed
    run, which no test asks of it, and each flow run's end waits up to a second
    for the heartbeat thread's next tick (a quarter of a small run's time).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=180),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A pseudonym key in the environment, as `jvn run` requires."""
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    monkeypatch.delenv("JVN_PSEUDONYM_KEY_FILE", raising=False)
    return TEST_PSEUDONYM_KEY


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness: None) -> str:
    """The harness's server, for the `jvn` processes tests start (PREFECT_API_URL):
    one Prefect server for the session, in-process flows and processes alike, where
    each server started costs a fresh database and its migrations (15-20 s)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness set no API URL"
    return str(url)
