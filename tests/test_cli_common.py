"""The shared CLI plumbing: file-system errors become one line, a closed output pipe stops quietly."""

from __future__ import annotations

import os

import pytest
import typer

from unnparse.cli import common
from unnparse.cli.common import check_output_dir, check_output_file, os_error_message, user_errors


def _exit_code(func) -> int:
    try:
        func()
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code
    raise AssertionError("the command did not exit")


def test_os_error_messages_name_the_path():
    assert os_error_message(IsADirectoryError(21, "Is a directory", "/data")) == "/data: Is a directory"
    # a failed rename names its destination, the path the user gave
    assert os_error_message(OSError(21, "Is a directory", "/tmp/.x.tmp", None, "/out")) == "/out: Is a directory"
    assert os_error_message(OSError(28, "No space left on device")) == "No space left on device"
    assert os_error_message(FileNotFoundError("no model here")) == "no model here"


def test_user_errors_turns_os_errors_into_one_line(capsys, monkeypatch):
    monkeypatch.delenv("UNNPARSE_DEBUG", raising=False)

    @user_errors
    def command() -> None:
        open(os.sep, "rb")  # a directory

    code = _exit_code(command)
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0 and "Is a directory" in err and "Traceback" not in err


def test_a_closed_output_pipe_stops_quietly(capsys, monkeypatch):
    silenced = []
    monkeypatch.setattr(common, "_silence_stdout", lambda: silenced.append(True))

    @user_errors
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    code = _exit_code(command)
    assert code == 1 and silenced == [True]
    assert capsys.readouterr().err == ""


def test_output_checks(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    check_output_dir(tmp_path / "new" / "model")  # may be created
    check_output_file(tmp_path / "new" / "out.conllu")
    for check, path, needle in [
        (check_output_dir, a_file, "exists and is not a directory"),
        (check_output_dir, a_file / "model", "is not a directory"),
        (check_output_file, tmp_path, "is a directory"),
        (check_output_file, a_file / "deeper" / "out.png", "is not a directory"),
    ]:
        with pytest.raises(typer.Exit):
            check(path)
        assert needle in capsys.readouterr().err
    assert a_file.read_text() == "x"
