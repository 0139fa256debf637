"""Prefect's temporary server is started by `jvn run` itself, early (issue 11).

- With no Prefect server configured, the run starts the temporary server before
  it takes the lock and imports the flow, runs the flow against it (Prefect
  starts none of its own), and stops it at the end.
- The server's process holds neither the pseudonym key nor its file's name.
- Wherever something configures Prefect's API or its temporary server (the
  environment, a profile, `.env`, `prefect.toml`, `[tool.prefect]`), the run
  starts none and leaves the choice to Prefect, as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import prefect_start
from flows.cli.prefect_start import prefect_may_be_configured, server_environment
from tests.trust_support import DAY_1, REPO, Job, describe, job_env, write_inbox

# --- when the run starts a server itself -------------------------------------


def _unconfigured(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "prefect-home"
    home.mkdir()
    folder = tmp_path / "cwd"
    folder.mkdir()
    return {"PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "INFO"}, folder


def test_nothing_configured_means_the_run_starts_the_server(tmp_path: Path) -> None:
    environ, folder = _unconfigured(tmp_path)
    # A setting that says nothing about which server does not count.
    environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    (folder / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["prefect"]\n')
    Path(environ["PREFECT_HOME"], "profiles.toml").write_text(
        'active = "default"\n[profiles.default]\nPREFECT_LOGGING_LEVEL = "INFO"\n'
    )
    assert not prefect_may_be_configured(environ, folder)


@pytest.mark.parametrize(
    "variable",
    [
        "PREFECT_API_URL",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE",
        "PREFECT_SERVER_EPHEMERAL_ENABLED",
        "PREFECT_API__URL",
        "PREFECT_PROFILE",
        "PREFECT_PROFILES_PATH",
    ],
)
def test_a_prefect_setting_in_the_environment_leaves_the_choice_to_prefect(
    tmp_path: Path, variable: str
) -> None:
    environ, folder = _unconfigured(tmp_path)
    environ[variable] = "x"
    assert prefect_may_be_configured(environ, folder)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (".env", "PREFECT_API_URL=http://127.0.0.1:4200/api\n"),
        ("prefect.toml", '[api]\nurl = "http://127.0.0.1:4200/api"\n'),
        ("pyproject.toml", '[tool.prefect.api]\nurl = "http://127.0.0.1:4200/api"\n'),
    ],
)
def test_a_prefect_settings_file_in_the_folder_leaves_the_choice_to_prefect(
    tmp_path: Path, name: str, text: str
) -> None:
    environ, folder = _unconfigured(tmp_path)
    (folder / name).write_text(text)
    assert prefect_may_be_configured(environ, folder)


@pytest.mark.parametrize(
    "profiles",
    [
        'active = "local"\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n',
        '[profiles.ephemeral]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "false"\n',
        "not [ toml",
    ],
    ids=["api url", "temporary server off", "unreadable"],
)
def test_a_profile_that_may_name_a_server_leaves_the_choice_to_prefect(
    tmp_path: Path, profiles: str
) -> None:
    environ, folder = _unconfigured(tmp_path)
    Path(environ["PREFECT_HOME"], "profiles.toml").write_text(profiles)
    assert prefect_may_be_configured(environ, folder)


def test_inside_a_process_that_imported_prefect_the_run_starts_no_server() -> None:
    pytest.importorskip("prefect")
    with prefect_start.temporary_server_started_early() as early:
        assert early.server is None


# --- the server's environment --------------------------------------------------


def test_the_server_environment_holds_neither_the_key_nor_its_file() -> None:
    env = server_environment(
        {
            "JVN_PSEUDONYM_KEY": "0123456789abcdef0123456789abcdef",
            "JVN_PSEUDONYM_KEY_FILE": "/secret/key",
            "PATH": "/usr/bin",
        }
    )
    assert "JVN_PSEUDONYM_KEY" not in env
    assert "JVN_PSEUDONYM_KEY_FILE" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["PREFECT__SERVER_EPHEMERAL"] == "1"
    assert env["PREFECT_UI_ENABLED"] == "0"


def test_the_servers_defaults_yield_to_the_environment() -> None:
    env = server_environment({"PREFECT_API_BLOCKS_REGISTER_ON_START": "true"})
    assert env["PREFECT_API_BLOCKS_REGISTER_ON_START"] == "true"
    assert env["PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION"] == "false"


# --- the flow's settings on the run's own server ---------------------------------


def _heartbeat_seconds_inside(early: prefect_start.EarlyServer) -> object:
    from prefect.settings import get_current_settings

    with early.flow_settings():
        return get_current_settings().flows.heartbeat_frequency


def test_heartbeats_stay_as_prefect_sets_them_where_prefect_chose_the_server() -> None:
    from prefect.settings import get_current_settings

    before = get_current_settings().flows.heartbeat_frequency
    assert _heartbeat_seconds_inside(prefect_start.EarlyServer(None)) == before


# Prefect reads its settings when imported: each case is a process of its own.
_HEARTBEAT_INSIDE = """
from flows.cli import prefect_start
from prefect.settings import get_current_settings

# Never started: flow_settings only asks whether the run started one.
early = prefect_start.EarlyServer(prefect_start.TemporaryServer(None, 0))
with early.flow_settings():
    print(get_current_settings().flows.heartbeat_frequency)
"""


def _heartbeat_in_a_process(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _HEARTBEAT_INSIDE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, describe(result)
    return result.stdout.strip()


def test_the_flow_on_the_runs_own_server_sends_no_heartbeats(tmp_path: Path) -> None:
    assert _heartbeat_in_a_process(job_env(tmp_path / "prefect-home")) == "None"


@pytest.mark.parametrize(
    "where",
    ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY", "profile"],
)
def test_a_heartbeat_frequency_prefect_is_given_is_kept(tmp_path: Path, where: str) -> None:
    env = job_env(tmp_path / "prefect-home")
    if where == "profile":
        (tmp_path / "prefect-home").mkdir()
        (tmp_path / "prefect-home" / "profiles.toml").write_text(
            'active = "here"\n[profiles.here]\nPREFECT_FLOWS_HEARTBEAT_FREQUENCY = 60\n'
        )
    else:
        env[where] = "60"
    assert _heartbeat_in_a_process(env) == "60"


# --- end to end ------------------------------------------------------------------

# Records, when the run opens the warehouse (after the lock, before the flow is
# imported), the processes it has started and whether Prefect is imported yet.
_RECORD_AT_CLAIM = """
import json, sys
from pathlib import Path
import flows.cli.run

record = Path(sys.argv[1])
real_claim = flows.cli.run.claim_feed

def children():
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != __import__("os").getpid():
                continue
            command = (entry / "cmdline").read_bytes().split(b"\\0")
            environment = (entry / "environ").read_bytes().split(b"\\0")
        except OSError:
            continue
        found.append({
            "pid": int(entry.name),
            "command": [part.decode() for part in command if part],
            "holds_key": any(v.startswith(b"JVN_PSEUDONYM_KEY") for v in environment),
        })
    return found

def recording_claim(*args, **kwargs):
    record.write_text(json.dumps({
        "children": children(), "prefect_imported": "prefect" in sys.modules,
    }))
    if len(sys.argv) > 2 and sys.argv[2] == "--stop-here":
        raise SystemExit(0)
    return real_claim(*args, **kwargs)

flows.cli.run.claim_feed = recording_claim
from flows.cli import main
args = [a for a in sys.argv[2:] if a != "--stop-here"]
sys.exit(main(args))
"""


def _run_recording(
    tmp_path: Path, env: dict[str, str], *, stop_at_claim: bool
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    record = tmp_path / "record.json"
    stop = ["--stop-here"] if stop_at_claim else []
    result = subprocess.run(
        [sys.executable, "-c", _RECORD_AT_CLAIM, str(record), *stop, *job.run_args(DAY_1)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert record.exists(), describe(result)
    return result, json.loads(record.read_text())


@pytest.mark.slow
def test_the_run_starts_the_temporary_server_early_and_uses_it(tmp_path: Path) -> None:
    # No PREFECT_API_URL: without the early start Prefect would start its own.
    env = job_env(
        tmp_path / "prefect-home",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    result, seen = _run_recording(tmp_path, env, stop_at_claim=False)
    assert result.returncode == 0, describe(result)
    assert seen["prefect_imported"] is False, "Prefect was imported before the server started"
    children = seen["children"]
    assert isinstance(children, list)
    servers = [c for c in children if "prefect.server.api.server:create_app" in c["command"]]
    assert servers, f"no server was started before the flow: {children}"
    assert not any(c["holds_key"] for c in children), "a child process holds the pseudonym key"
    # Prefect started no temporary server of its own: the flow used this one.
    assert "Starting temporary server" not in result.stderr, describe(result)
    assert "Beginning flow run" in result.stderr, describe(result)
    for server in servers:
        assert not Path(f"/proc/{server['pid']}").exists() or (
            Path(f"/proc/{server['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        ), "the temporary server outlived the run"


@pytest.mark.slow
@pytest.mark.parametrize("where", ["environment", "profile"])
def test_a_run_with_a_configured_server_starts_none(tmp_path: Path, where: str) -> None:
    home = tmp_path / "prefect-home"
    url = "http://127.0.0.1:9/api"  # never reached: the run stops before the flow
    if where == "environment":
        env = job_env(home, api_url=url)
    else:
        home.mkdir()
        (home / "profiles.toml").write_text(
            f'active = "here"\n[profiles.here]\nPREFECT_API_URL = "{url}"\n'
        )
        env = job_env(home)
    result, seen = _run_recording(tmp_path, env, stop_at_claim=True)
    assert result.returncode == 0, describe(result)
    assert seen["children"] == [], seen
