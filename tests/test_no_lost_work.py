"""No lost work: one writer per output directory, no model replaced by accident, failed runs keep the old outputs,
resuming says what differs, unwritable outputs and full disks are one-line errors, and user strings are never
read as rich markup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.parser_fixtures import write_treebank
from unnparse.cli.parser_app import app
from unnparse.output_dir import LOCK_FILE, OutputDirError, OutputLock, claim_output_dir, describe_contents
from unnparse.training.checkpoints import CHECKPOINT, CheckpointError, read_checkpoint, write_checkpoint

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--hidden", "16", "--rel-hidden", "8", "--lstm-hidden", "16", "--lstm-layers", "1"]
SMALL += ["--device", "cpu", "--no-progress", "--tokenizer-steps", "0", "--threads", "1"]


def _one_line_error(result, *needles: str, last: bool = False) -> str:
    """The error line of a failed command: its whole stderr (or, with ``last``, the last line after the progress
    report of a run that got as far as building the model)."""
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    if last:
        message = message.splitlines()[-1]
        assert message.startswith("error: "), result.stderr
    assert message.count("\n") == 0, message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_treebank(root, n_train=20, n_dev=5)
    return root


def _train(data: Path, output: Path, *extra: str):
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(data), "--output", str(output), "--epochs", "1"]
    return runner.invoke(app, [*args, *SMALL, *extra])


@pytest.fixture(scope="module")
def model(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "toy"
    result = _train(data, out)
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------ one writer per output directory


def _hold_lock(directory: Path) -> subprocess.Popen[str]:
    """A separate process that holds the lock of ``directory`` until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from unnparse.output_dir import OutputLock
        OutputLock({str(directory)!r}, command="unnparse train --output held").acquire()
        print("held", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_into_a_held_directory_fails_at_once_naming_the_holder(data, tmp_path):
    out = tmp_path / "busy"
    holder = _hold_lock(out)
    try:
        start = time.monotonic()
        message = _one_line_error(_train(data, out), str(out), f"pid {holder.pid}", "unnparse train --output held")
        assert "another run is writing this directory" in message
        assert time.monotonic() - start < 30  # refused before any training
        assert not (out / "config.json").exists() and not (out / CHECKPOINT).exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # kill -9 released the lock: the directory is free again
    result = _train(data, out)
    assert result.exit_code == 0, result.output


def test_two_concurrent_training_processes_one_wins_one_is_refused(data, tmp_path):
    out = tmp_path / "race"
    cmd = [sys.executable, "-m", "unnparse", "train", "--treebank", "UD_Toy-Test", "--data-dir", str(data)]
    cmd += ["--output", str(out), "--epochs", "2", *SMALL]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs if p.stderr is not None]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "another run is writing this directory" in loser or "holds a parser model" in loser, loser
    assert "Traceback" not in loser
    json.loads((out / "config.json").read_text())  # the winner's model is whole


def test_a_run_that_fails_before_writing_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new" / "model"
    result = runner.invoke(app, ["train", "--train", str(tmp_path / "missing.conllu"), "--output", str(out)])
    _one_line_error(result, "missing.conllu", last=True)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    result = runner.invoke(app, ["train", "--train", str(tmp_path / "missing.conllu"), "--output", str(kept)])
    assert result.exit_code == 1 and kept.is_dir()  # a folder that was there stays


def test_lock_objects(tmp_path):
    with OutputLock(tmp_path / "d", command="first") as lock:
        assert lock.held and (tmp_path / "d" / LOCK_FILE).is_file()
        with pytest.raises(OutputDirError, match="another run is writing"):
            OutputLock(tmp_path / "d").acquire()
    assert not lock.held
    OutputLock(tmp_path / "d").acquire().release()  # free again


# ------------------------------------------------------------------ a model is not replaced by accident


def test_a_directory_holding_a_model_needs_resume_or_overwrite(data, model, tmp_path):
    out = tmp_path / "copy"
    import shutil

    shutil.copytree(model, out)
    before = (out / "config.json").read_text()
    _one_line_error(_train(data, out), "holds a parser model of UD_Toy-Test", "--overwrite", "--resume")
    assert (out / "config.json").read_text() == before
    _one_line_error(_train(data, out, "--resume", "--overwrite"), "give one")
    result = _train(data, out, "--overwrite")
    assert result.exit_code == 0, result.output
    result = _train(data, out, "--resume", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "after epoch 1" in result.stderr


def test_resume_without_a_checkpoint_is_one_line(data, tmp_path):
    _one_line_error(_train(data, tmp_path / "new", "--resume"), "no checkpoint to resume from")


def test_describe_contents(model, tmp_path):
    assert describe_contents(tmp_path) is None
    text = describe_contents(model)
    assert text is not None and "parser model of UD_Toy-Test" in text and CHECKPOINT in text
    (tmp_path / "config.json").write_text("{broken")
    assert describe_contents(tmp_path) == "a model (unreadable config.json)"
    with pytest.raises(OutputDirError, match="holds a model"):
        claim_output_dir(tmp_path)


# ------------------------------------------------------------------ resume says what differs


def _copy(model: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(model, dest)
    return dest


def test_resume_with_other_options_names_the_difference(data, model, tmp_path):
    out = _copy(model, tmp_path / "m")
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(data), "--output", str(out), "--resume"]
    small = [a if a != "16" else "24" for a in SMALL]  # another --hidden / --lstm-hidden
    result = runner.invoke(app, [*args, "--epochs", "2", *small])
    _one_line_error(result, str(out / CHECKPOINT), "encoder.hidden 16, not 24", last=True)


def test_resume_with_other_data_names_the_difference(data, model, tmp_path):
    out = _copy(model, tmp_path / "m")
    other = write_treebank(tmp_path / "other", n_train=21, n_dev=5)
    args = ["train", "--train", str(next(other.glob("*train*"))), "--dev", str(next(other.glob("*dev*")))]
    result = runner.invoke(app, [*args, "--output", str(out), "--resume", "--epochs", "2", *SMALL])
    _one_line_error(result, str(out / CHECKPOINT), "train data 20 sentences", "not 21 sentences", last=True)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_checkpoint_is_one_line(data, model, tmp_path, damage):
    out = _copy(model, tmp_path / "m")
    ckpt = out / CHECKPOINT
    raw = ckpt.read_bytes()
    ckpt.write_bytes({"empty": b"", "truncated": raw[: len(raw) // 2], "garbage": b"\x00junk" * 50}[damage])
    result = _train(data, out, "--resume", "--epochs", "2")
    message = _one_line_error(result, str(ckpt), "corrupt checkpoint", last=True)
    assert "Aborted" not in message


def test_an_interrupt_names_resume(data, tmp_path, monkeypatch):
    import unnparse.parser.training as training

    def interrupted(*args, **kwargs):
        out = Path(args[4])
        write_checkpoint(out / CHECKPOINT, {"x": torch.zeros(1)}, {"signature": {"kind": "parser"}})
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_parser", interrupted)
    result = _train(data, tmp_path / "m")
    assert result.exit_code == 130
    assert "--resume" in result.stderr and str(tmp_path / "m" / CHECKPOINT) in result.stderr


# ------------------------------------------------------------------ failed writes keep what was there


def test_a_failed_parse_keeps_the_previous_output(model, tmp_path):
    out = tmp_path / "out.conllu"
    out.write_text("previous content\n")
    bad = tmp_path / "bad.conllu"
    good = "1\tThe\t_\t_\t_\t_\t2\tdet\t_\t_\n2\tdog\t_\t_\t_\t_\t0\troot\t_\t_\n\n"
    bad.write_text(good * 300 + "1\tbroken\n\n")  # fails after hundreds of sentences were parsed
    args = ["parse", "--model", str(model), "--device", "cpu", "--input-format", "conllu", "--input", str(bad)]
    _one_line_error(runner.invoke(app, [*args, "--output", str(out)]), f"{bad}:901")
    assert out.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temporary left behind


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_input_gives_empty_output_and_exit_0(model, tmp_path, text):
    result = runner.invoke(app, ["parse", "--model", str(model), "--device", "cpu"], input=text)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "no sentences" in result.stderr
    out = tmp_path / "out.conllu"
    source = tmp_path / "in.txt"
    source.write_text(text)
    result = runner.invoke(app, ["parse", "--model", str(model), "--device", "cpu", "-i", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == ""


def test_unwritable_output_directory_fails_before_reading_data(tmp_path):
    # /proc accepts no new directories, whatever the permission bits say (also for root)
    result = runner.invoke(app, ["train", "--train", str(tmp_path / "missing.conllu"), "--output", "/proc/unnparse"])
    _one_line_error(result, "/proc/unnparse")
    assert "missing.conllu" not in result.stderr  # refused before the data was looked at


def test_unwritable_output_file_fails_before_parsing(model):
    result = runner.invoke(app, ["parse", "--model", str(model), "--output", "/proc/unnparse.conllu"], input="A b.\n")
    _one_line_error(result, "/proc")


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
    sys.argv = ["unnparse", *sys.argv[2:]]
    from unnparse.cli.parser_app import main
    main()
    """
)


def test_a_full_disk_during_training_is_one_line(data, tmp_path):
    out = tmp_path / "m"
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(data), "--output", str(out), "--epochs", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "20000", *args, *SMALL], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and lines[-1].startswith("error: "), proc.stderr
    assert str(out) in lines[-1] and ("too large" in lines[-1] or "space" in lines[-1]), lines[-1]


def test_write_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path):
    path = tmp_path / CHECKPOINT
    write_checkpoint(path, {"w": torch.zeros(4)}, {"signature": {"kind": "parser"}, "n": 1})
    code = textwrap.dedent(
        f"""
        import resource, signal, torch
        from pathlib import Path
        from unnparse.training.checkpoints import write_checkpoint
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            write_checkpoint(Path({str(path)!r}), {{"w": torch.zeros(1_000_000)}}, {{"signature": {{}}}})
        except OSError as err:
            print("OSError", err.filename, err.strerror)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.startswith(f"OSError {path}"), proc.stdout + proc.stderr
    state, meta = read_checkpoint(path)
    assert meta["n"] == 1 and state["w"].shape == (4,)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT]


def test_read_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / CHECKPOINT)
    (tmp_path / CHECKPOINT).write_bytes(b"")
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        read_checkpoint(tmp_path / CHECKPOINT)


# ------------------------------------------------------------------ user strings are not rich markup


def test_markup_in_paths_and_environment_is_printed_as_is(model, tmp_path, monkeypatch):
    weird = tmp_path / "[bold]" / "[/]x"
    _one_line_error(runner.invoke(app, ["parse", "--model", str(model), "--input", str(weird)]), str(weird))
    out = tmp_path / "no[/]dir" / "[/]" / "out.conllu"
    result = runner.invoke(app, ["parse", "--model", str(model), "--device", "cpu", "-o", str(out)], input="A b.\n")
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# ")
    monkeypatch.setenv("UNNPARSE_MODEL", "[/]x")
    _one_line_error(runner.invoke(app, ["parse"], input="A b.\n"), "[/]x: no such model directory", last=True)
    monkeypatch.delenv("UNNPARSE_MODEL")
    shard = tmp_path / "[red]" / "[/]s.conllu"
    _one_line_error(runner.invoke(app, ["merge-shards", str(shard)]), str(shard))
    two_roots = tmp_path / "two[" / "]roots.conllu"
    two_roots.parent.mkdir()
    two_roots.write_text("1\tA\t_\t_\t_\t_\t0\troot\t_\t_\n2\tb\t_\t_\t_\t_\t0\troot\t_\t_\n\n")
    result = runner.invoke(app, ["evaluate", "--gold", str(two_roots), "--pred", str(two_roots), "--json"])
    assert result.exit_code == 0, result.output  # two roots: scored, with a warning naming the file and line
    assert f"warning: {two_roots}:1: sentence has 2 roots" in result.stderr
    assert json.loads(result.stdout)["uas"] == 100.0


def test_training_into_a_markup_path(data, tmp_path):
    out = tmp_path / "[bold]" / "[/]model"
    result = _train(data, out)
    assert result.exit_code == 0, result.output
    assert str(out) in result.stderr
    assert (out / "config.json").is_file()
