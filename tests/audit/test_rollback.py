"""Operations: `jvn rollback` moves CURRENT back; `jvn serve` builds the scheduled deployment.

Rollback is tested on real runs; serve is tested by building its deployment
(and intercepting `Flow.serve`), never by really serving.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema

from flows import serve as serve_module
from flows.cli import build_parser, main
from flows.common.feed_folder import CURRENT, live_snapshot, snapshots
from flows.decide.distributed import dask_task_runner
from flows.publish.change_set import apply_change_set
from tests.audit.test_rule_change_scenarios import Job, change_set, snapshot_rows
from tests.inbox_builder import melior_row, write_delivery
from transforms.rules import default_rules_path

DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)


# --- rollback ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_rollback_points_current_at_the_previous_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job(tmp_path)
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2")])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-2", 2, Status="MAKULERAD")])
    assert job.run(DAY_1) == 0
    assert job.run(DAY_2) == 0
    first, second = snapshots(job.feed)
    rollback = ["rollback", "--feed", str(job.feed), "--warehouse", str(job.warehouse)]

    assert main(rollback) == 0

    assert (job.feed / CURRENT).read_text(encoding="utf-8").strip() == first
    assert snapshots(job.feed) == [first, second], "rollback deletes nothing"
    assert f"CURRENT now names {first}" in capsys.readouterr().out

    # Nothing older is kept: refused, CURRENT unchanged.
    assert main(rollback) == 2
    assert "oldest snapshot" in capsys.readouterr().err
    assert (job.feed / CURRENT).read_text(encoding="utf-8").strip() == first

    # The next run publishes again, its change set taken against the rolled-back-to feed.
    assert job.run(DAY_2) == 0
    live = live_snapshot(job.feed)
    assert live is not None and live.name not in (first, second)
    assert live.manifest["change_set"]["since_snapshot"] == first
    assert set(change_set(live.path)["record_id"]) == {"melior:D-2"}
    assert apply_change_set(snapshot_rows(job.feed / first), change_set(live.path)).equals(
        snapshot_rows(live.path)
    )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_stats_after_a_rollback_reports_the_live_run_not_the_latest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job(tmp_path)
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2")])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-2", 2, Status="MAKULERAD")])
    assert job.run(DAY_1) == 0
    assert job.run(DAY_2) == 0
    first_run = job.query("SELECT run_id FROM runs WHERE as_of = $day", {"day": DAY_1})[0][0]
    assert main(["rollback", "--feed", str(job.feed), "--warehouse", str(job.warehouse)]) == 0
    capsys.readouterr()

    assert main(["stats", "--warehouse", str(job.warehouse), "--by", "reason"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"run {first_run}  as of {DAY_1}")
    assert "live" in lines[0]
    assert not any("retracted" in line for line in lines), "D-2 was shown on day 1"
    (total,) = [line for line in lines if "total" in line]
    assert [cell.strip(" │") for cell in total.split("┆")][-3:] == ["2", "2", "100.0"]


def test_rollback_without_a_feed_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "feed"

    assert main(["rollback", "--feed", str(feed), "--warehouse", str(tmp_path / "w.duckdb")]) == 2

    error = capsys.readouterr().err.strip()
    assert error.startswith("jvn: nothing to roll back") and "\n" not in error
    assert not feed.exists()


# --- serve ---------------------------------------------------------------------------


def serve_arguments(*extra: str) -> argparse.Namespace:
    arguments = build_parser().parse_args(["serve", *extra])
    arguments.cron = arguments.cron or serve_module.DEFAULT_CRON
    arguments.timezone = arguments.timezone or serve_module.DEFAULT_TIMEZONE
    arguments.name = arguments.name or serve_module.DEFAULT_DEPLOYMENT
    return arguments


def test_deployment_defaults_to_0230_stockholm_with_absolute_run_options(tmp_path: Path) -> None:
    deployment = serve_module.build_deployment(
        serve_arguments("--feed", str(tmp_path / "feed"), "--partitions", "8")
    )

    assert deployment.name == "nightly"
    assert deployment.flow_name == "jvn-nightly-scheduled"
    assert deployment.entrypoint == "flows.serve.scheduled_nightly_run"
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "30 2 * * *"
    assert schedule.schedule.timezone == "Europe/Stockholm"
    parameters = deployment.parameters
    assert "as_of" not in parameters, "as_of is decided when each run starts"
    assert parameters["feed_dir"] == str(tmp_path / "feed")
    assert parameters["partitions"] == 8 and parameters["keep_snapshots"] == 7
    assert parameters["rules"] == str(default_rules_path().resolve())
    for key in ("inbox", "warehouse", "analytics_db", "feed_dir", "rules"):
        assert Path(parameters[key]).is_absolute()
    # The flow accepts these parameters as they are; as_of is optional (None: today).
    serve_module.scheduled_nightly_run.validate_parameters(parameters)
    schema = parameter_schema(serve_module.scheduled_nightly_run)
    assert "as_of" not in schema.required and schema.properties["as_of"]["default"] is None


def test_scheduled_flow_annotations_are_objects_not_strings() -> None:
    # A served run validates its parameters in a spawned process, where the
    # string annotation "date | None" could not be resolved (the run failed).
    annotations = serve_module.scheduled_nightly_run.fn.__annotations__
    assert not any(isinstance(value, str) for value in annotations.values())


def test_cron_timezone_and_name_are_configurable() -> None:
    deployment = serve_module.build_deployment(
        serve_arguments("--cron", "15 4 * * 1-5", "--timezone", "UTC", "--name", "weekdays")
    )

    assert deployment.name == "weekdays"
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("15 4 * * 1-5", "UTC")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--cron", "30 2 * *", "not a cron"), ("--timezone", "Europe/Nowhere", "unknown time zone")],
)
def test_bad_schedule_exits_2(
    option: str,
    value: str,
    message: str,
    pseudonym_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")

    assert main(["serve", option, value]) == 2

    assert message in capsys.readouterr().err


def test_serve_without_a_prefect_server_exits_2(
    pseudonym_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["serve"]) == 2

    assert "PREFECT_API_URL" in capsys.readouterr().err


def test_serve_hands_the_same_deployment_to_flow_serve(
    pseudonym_key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: dict[str, Any] = {}
    flow_type = type(serve_module.scheduled_nightly_run)
    monkeypatch.setattr(flow_type, "serve", lambda self, **options: served.update(options))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")

    assert main(["serve", "--warehouse", str(tmp_path / "w.duckdb")]) == 0

    assert served["name"] == "nightly"
    assert served["schedule"].cron == "30 2 * * *"
    assert served["schedule"].timezone == "Europe/Stockholm"
    assert served["parameters"]["warehouse"] == str(tmp_path / "w.duckdb")
    assert served["entrypoint_type"].value == "module_path"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_scheduled_run_defaults_as_of_to_today_in_stockholm_and_keeps_the_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.cli
    import flows.nightly

    calls: list[date] = []

    def fake_nightly_run(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs["as_of"])
        return {}

    monkeypatch.setattr(serve_module, "today_in_stockholm", lambda: DAY_2)
    monkeypatch.setattr(flows.nightly, "nightly_run", fake_nightly_run)
    job = Job(tmp_path)
    job.inbox.mkdir(parents=True)  # a run needs its inbox folder (preflight)

    def scheduled(as_of: date | None = None) -> None:
        serve_module.scheduled_nightly_run(
            inbox=str(job.inbox),
            warehouse=str(job.warehouse),
            analytics_db=str(job.analytics),
            feed_dir=str(job.feed),
            as_of=as_of,
        )

    scheduled()
    scheduled(DAY_1)

    assert calls == [DAY_2, DAY_1]

    # A live feed for a later date refuses an earlier run before anything is touched.
    monkeypatch.setattr(serve_module, "today_in_stockholm", lambda: DAY_1)
    snapshot = job.feed / f"{DAY_2}_x"
    snapshot.mkdir(parents=True)
    (snapshot / "manifest.json").write_text(f'{{"as_of": "{DAY_2}"}}', encoding="utf-8")
    (job.feed / CURRENT).write_text(f"{DAY_2}_x\n", encoding="utf-8")
    with pytest.raises(serve_module.RunRefused, match="back in time"):
        scheduled()
    assert calls == [DAY_2, DAY_1]


def test_deployment_decides_on_dask_only_when_asked() -> None:
    default = serve_module.build_deployment(serve_arguments()).parameters
    distributed = serve_module.build_deployment(
        serve_arguments("--dask-address", "tcp://scheduler:8786")
    ).parameters

    assert (default["dask"], default["dask_address"]) == (False, None)
    assert distributed["dask_address"] == "tcp://scheduler:8786"
    serve_module.scheduled_nightly_run.validate_parameters(distributed)


def test_dask_runner_uses_the_given_scheduler_or_a_local_cluster() -> None:
    remote = dask_task_runner("tcp://scheduler:8786", workers=2)
    local = dask_task_runner(None, workers=3)

    assert remote.address == "tcp://scheduler:8786"
    assert local.address is None
    assert local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["threads_per_worker"] == 1
