"""Prefect's temporary server, started by `jvn run` itself and early (issue 11).

With no Prefect server configured, Prefect starts a temporary one when the flow
is first called: only then does it import its server code into this process
(seconds) and start the server process, which imports the same code again and
prepares its database (more seconds), while the run waits. Started here
instead, right after the run's configuration is checked, the server process
starts while this process takes the lock, opens the warehouse and imports the
flow, and this process never imports Prefect's server code: the flow reaches
the server through PREFECT_API_URL, set before Prefect is imported.

The server is the one Prefect would start (the same uvicorn command and
settings), with four differences, each a thing a server that lives for one
run does not need:

- it does not register Prefect's block types (nor import the installed Prefect
  collections, prefect-dask and Dask with it, to see whether to): the job saves
  no blocks, and a `prefect server start` on the same PREFECT_HOME registers
  them itself;
- it does not run the automation triggers service: a run defines no automations;
- its listening socket is made here and handed over, so its address is known
  before it starts and no other process can take the port meanwhile;
- the flow sends it no heartbeats (`EarlyServer.flow_settings`): they serve a
  server that outlives the run.

Neither the pseudonym key nor the name of its file is in its environment.

It is started only where Prefect would start one: when nothing configures a
Prefect server. Prefect reads its settings from the environment, `.env`,
`prefect.toml` and `pyproject.toml` in the current folder, and the profiles
file; wherever one of those might say something about the API or the temporary
server, the choice is left to Prefect, as before. Settings given here are
defaults: the same variable in the environment wins.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from flows.common.config import environment_variable, environment_without_key

API_URL_VARIABLE = "PREFECT_API_URL"

SERVER_SETTINGS = {
    # As Prefect's own temporary server (SubprocessASGIServer).
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
"""What makes the server process a temporary server; always set."""

SERVER_DEFAULTS = {
    # No block types registered, and no look at the installed collections to
    # decide whether to: that look imports prefect-dask and Dask (a second at start).
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
    # Automations: none in a server that lives for one run.
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
}
"""Settings the temporary server does not need; the environment's own values win."""

DEFAULT_STARTUP_TIMEOUT_SECONDS = 120.0
STOP_WAIT_SECONDS = 5.0

_FALSE = {"0", "false", "f", "no", "n", "off"}


class ServerDidNotStart(RuntimeError):
    """The temporary server did not answer within the startup timeout."""


class TemporaryServer:
    """A Prefect API server process for one run, listening on 127.0.0.1:`port`."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout: float) -> None:
        """Return once the server answers its health check; ServerDidNotStart if it
        exits or does not answer within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerDidNotStart(
                    f"Prefect's temporary server exited ({self.process.returncode})"
                )
            try:
                # The socket listens already: a request made before the server is
                # up waits in its queue; short timeouts keep an eye on the process.
                health = f"{self.api_url}/health"  # http://127.0.0.1 only
                with urllib.request.urlopen(health, timeout=0.5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerDidNotStart(
                    f"Prefect's temporary server did not start within {timeout:g} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a few seconds) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def prefect_may_be_configured(
    environ: Mapping[str, str] | None = None, folder: Path | None = None
) -> bool:
    """Whether anything might configure Prefect's API or its temporary server.

    True is "leave it to Prefect": a PREFECT_API_URL, a switch of the temporary
    server, a chosen profile or profiles file in the environment; a `.env` or a
    `prefect.toml` in `folder`; a `[tool.prefect]` in its pyproject.toml; a
    profiles file that mentions the API or the temporary server, or that
    cannot be read.
    """
    environ = os.environ if environ is None else environ
    folder = Path.cwd() if folder is None else folder
    if any(name.startswith("PREFECT_") and _decides_the_server(name) for name in environ):
        return True
    if (folder / ".env").exists() or (folder / "prefect.toml").exists():
        return True
    try:
        pyproject = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        pyproject = ""
    except OSError:
        return True
    if "tool.prefect" in pyproject:
        return True
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    for settings in profiles.get("profiles", {}).values():
        if any(_decides_the_server(str(key)) for key in settings):
            return True
    return False


_DECIDING = ("API_URL", "EPHEMERAL_ENABLED", "ALLOW_EPHEMERAL", "PROFILE", "TEST_MODE")


def _decides_the_server(name: str) -> bool:
    """Whether a Prefect setting's name may choose the server or the profile
    (PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE, PREFECT_PROFILE, ...,
    also spelt with Prefect's nested `__`)."""
    name = name.upper().replace("__", "_")
    return any(part in name for part in _DECIDING)


def server_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server process's environment: this one's, less the pseudonym key (and
    its file's name), with the temporary server's settings."""
    env = environment_without_key(environ)
    for name, value in SERVER_DEFAULTS.items():
        env.setdefault(name, value)
    env.update(SERVER_SETTINGS)
    return env


def start_server() -> TemporaryServer:
    """Start the server process, on a port of 127.0.0.1 this process binds first."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = int(listener.getsockname()[1])
        # The command Prefect's SubprocessASGIServer runs, on the socket made here
        # (without its --app-dir: this interpreter imports Prefect where it is installed).
        command = [
            sys.executable, "-m", "uvicorn",
            "--factory", "prefect.server.api.server:create_app",
            "--fd", str(listener.fileno()),
            "--log-level", "error",
            "--lifespan", "on",
        ]  # fmt: skip
        process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            command,
            env=server_environment(),
            stdin=subprocess.DEVNULL,
            pass_fds=(listener.fileno(),),
        )
    finally:
        # The server holds its own copy; this one would only keep the port open
        # after the server is gone.
        listener.close()
    return TemporaryServer(process, port)


def startup_timeout() -> float:
    """Prefect's own setting for how long to wait for its temporary server."""
    text = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "")
    try:
        seconds = float(text)
    except ValueError:
        return DEFAULT_STARTUP_TIMEOUT_SECONDS
    return seconds if seconds > 0 else DEFAULT_STARTUP_TIMEOUT_SECONDS


class EarlyServer:
    """The server `jvn run` started early, or None where Prefect decides."""

    def __init__(self, server: TemporaryServer | None) -> None:
        self.server = server

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Point Prefect at the server while inside; to be entered before Prefect is
        imported (Prefect reads PREFECT_API_URL when imported)."""
        if self.server is None:
            yield
            return
        with environment_variable(API_URL_VARIABLE, self.server.api_url):
            yield

    def wait_ready(self) -> None:
        """Wait for the server to answer (ServerDidNotStart if it does not)."""
        if self.server is not None:
            self.server.wait_ready(startup_timeout())

    @contextlib.contextmanager
    def flow_settings(self) -> Iterator[None]:
        """Prefect's settings for the flow on this server; entered once Prefect is imported.

        On the run's own server, flow run heartbeats are off unless Prefect's settings
        name a frequency (from the environment, under either of its names, or a
        profile): they let a server that outlives a run mark it crashed when the
        beats stop, and this server stops with the run. Left on, the end of the
        flow run waits up to a second for the heartbeat thread's next tick.
        """
        if self.server is None:
            yield
            return
        from prefect.settings import (
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            get_current_settings,
            temporary_settings,
        )

        if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
            yield
            return

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@contextlib.contextmanager
def temporary_server_started_early() -> Iterator[EarlyServer]:
    """Start Prefect's temporary server now, where Prefect would start one later;
    stopped on the way out, however the run ends (Ctrl-C and SIGTERM too).

    Not where Prefect is imported already (a caller inside Python, tests): it
    read its settings then, and would not see the server's address.
    """
    if "prefect" in sys.modules or prefect_may_be_configured():
        yield EarlyServer(None)
        return
    server = start_server()
    try:
        yield EarlyServer(server)
    finally:
        _flush_prefect()
        server.stop()


def _flush_prefect() -> None:
    """Send what Prefect still holds for the server (logs, events) before it stops,
    as Prefect's own shutdown would have tried to."""
    if "prefect" not in sys.modules:
        return
    with contextlib.suppress(Exception):
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=STOP_WAIT_SECONDS)
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all(timeout=STOP_WAIT_SECONDS)
