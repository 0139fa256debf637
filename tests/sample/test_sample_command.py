"""`jvn sample` on the command line: no inbox overwritten unasked, each line once, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import EXIT_CONFIG, EXIT_OK, build_parser, main

SMALL = ["--records", "60", "--days", "2"]


def test_sample_refuses_to_write_into_a_non_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "melior" / "2026-11-24").mkdir(parents=True)
    delivery = inbox / "melior" / "2026-11-24" / "_control.json"
    delivery.write_text("committed", encoding="utf-8")

    status = main(["sample", "--out", str(inbox), *SMALL])

    assert status == EXIT_CONFIG
    assert delivery.read_text(encoding="utf-8") == "committed"
    assert sorted(p.name for p in inbox.iterdir()) == ["melior"]
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1
    assert "--overwrite" in error


def test_sample_writes_into_a_non_empty_folder_when_asked_to_overwrite(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "README").write_text("kept", encoding="utf-8")

    status = main(["sample", "--out", str(inbox), "--overwrite", *SMALL])

    assert status == EXIT_OK
    assert (inbox / "melior" / "2026-11-25" / "_control.json").is_file()
    assert (inbox / "README").read_text(encoding="utf-8") == "kept"


def test_sample_writes_into_an_empty_folder_without_being_asked(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    assert main(["sample", "--out", str(inbox), *SMALL]) == EXIT_OK
    assert (inbox / "blocks" / "2026-11-25" / "_control.json").is_file()


def test_sample_prints_each_progress_line_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["sample", "--out", str(tmp_path / "inbox"), *SMALL])

    lines = capsys.readouterr().err.splitlines()
    deliveries = sorted(
        f"{folder.parent.name} {folder.name}"
        for folder in (tmp_path / "inbox").glob("*/*")
        if folder.is_dir()
    )
    assert sorted(line.split(":")[0] for line in lines) == deliveries


def test_sample_reports_a_long_history_as_it_goes_without_repeating_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flows.sample.deliveries.CHUNK_RECORDS", 20)

    main(["sample", "--out", str(tmp_path / "inbox"), "--records", "400", "--days", "1"])

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(set(lines))
    assert any(line.endswith("rows so far") for line in lines)


def test_sample_help_shows_the_default_of_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sample", "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    sample = next(
        action.choices["sample"]
        for action in build_parser()._actions
        if getattr(action, "choices", None) and "sample" in action.choices
    )
    options = [a for a in sample._actions if a.option_strings and a.dest != "help"]
    assert options
    for option in options:
        assert f"{option.option_strings[0]}" in shown
        assert f"(default: {option.default})" in shown, option.option_strings[0]
