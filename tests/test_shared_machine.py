"""A shared machine: every command's --threads, a default share of the CPUs, OpenMP threads that sleep when idle, and
time budgets that hold for the tokenizer trained after the parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text, write_treebank
from unnparse import cpu_threads
from unnparse.cli import budget
from unnparse.cli.parser_app import app as parser_app
from unnparse.cli.unn_app import app as unn_app
from unnparse.conllu import read_conllu
from unnparse.cpu_threads import THREADS_CAP, default_threads
from unnparse.parser import training
from unnparse.runtime import set_threads
from unnparse.text import trained_tokenizer as tt

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
NO_TORCH = {"merge-shards"}  # reads and writes text only: no torch, no threads
SMALL = ["--hidden", "16", "--rel-hidden", "8", "--lstm-hidden", "16", "--lstm-layers", "1", "--device", "cpu"]


def _commands(group, path: tuple[str, ...] = ()):
    """Every leaf command of a (typer's) click group, with its path of names."""
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            yield from _commands(command, (*path, name))
    else:
        yield path, group


def _threads_options() -> dict:
    found = {}
    for prog, app in (("unnparse", parser_app), ("unn", unn_app)):
        for path, command in _commands(typer.main.get_command(app)):
            if path[-1] in NO_TORCH:
                continue
            option = next((p for p in command.params if "--threads" in getattr(p, "opts", ())), None)
            found[(prog, *path)] = option
    return found


def test_every_command_has_the_same_threads_option():
    options = _threads_options()
    assert {("unn", "mnist", "train"), ("unn", "seqcomplete", "complete"), ("unnparse", "parse")} <= set(options)
    missing = [" ".join(path) for path, option in options.items() if option is None]
    assert not missing, f"no --threads: {missing}"
    helps = {option.help for option in options.values()}
    defaults = {option.default for option in options.values()}
    assert len(helps) == 1 and defaults == {None}
    assert f"at most {THREADS_CAP}" in helps.pop()


@pytest.mark.parametrize("args", [["parse"], ["evaluate"], ["train-tokenizer"], ["seqcomplete", "train"]])
def test_help_lists_threads(args):
    result = runner.invoke(unn_app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "--threads" in result.output and "busy" in result.output


def test_default_threads_takes_a_share_of_the_machine(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads(cpus=2, machine_cpus=2, load=0.2) == 2  # a quiet 2-core machine
    assert default_threads(cpus=2, machine_cpus=2, load=2.1) == 1  # beside two busy jobs
    assert default_threads(cpus=2, machine_cpus=2, load=9.0) == 1  # never less than one
    assert default_threads(cpus=32, machine_cpus=32, load=0.0) == THREADS_CAP  # never every core of a big machine
    assert default_threads(cpus=3, machine_cpus=64, load=1.0) == 3  # the affinity mask
    assert default_threads(cpus=64, machine_cpus=64, load=61.4) == 3  # what the others leave
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 2, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    monkeypatch.setattr(cpu_threads, "_cgroup_cpus", lambda: None)
    assert default_threads() == 3
    monkeypatch.setattr(cpu_threads, "_cgroup_cpus", lambda: 1.5)  # a quota of one and a half CPUs
    assert default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the user's word
    assert default_threads() == 7


def test_cgroup_quota_is_read(tmp_path):
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "none").write_text("max 100000\n")
    assert cpu_threads._cgroup_cpus(str(tmp_path / "cpu.max")) == 2.5
    assert cpu_threads._cgroup_cpus(str(tmp_path / "none")) is None
    assert cpu_threads._cgroup_cpus(str(tmp_path / "missing")) is None


def test_zero_or_no_threads_is_the_default_share(monkeypatch):
    monkeypatch.setattr("unnparse.runtime.default_threads", lambda: 1)
    before = torch.get_num_threads()
    try:
        assert set_threads(None) == 1 and torch.get_num_threads() == 1
        assert set_threads(0) == 1
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _run_python(code: str, **env: str) -> str:
    skip = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS"}
    environ = {k: v for k, v in os.environ.items() if k not in skip}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


THREADS_PROBE = """
import sys, torch
from unnparse.cli.unn_app import app
from unnparse.cpu_threads import default_threads
args = ["seqcomplete", "generate", "--output", sys.argv[1], "--vocab", "6", "--min-length", "2", "--max-length", "3"]
app([*args, *sys.argv[2:]], standalone_mode=False)
print(torch.get_num_threads(), torch.get_num_interop_threads(), default_threads())
"""


def test_threads_option_sets_torch_threads_in_a_fresh_process(tmp_path):
    probe = THREADS_PROBE.replace("sys.argv[1]", repr(str(tmp_path / "data.npz")))

    def threads(args: str) -> list[str]:
        return _run_python(probe.replace("sys.argv[2:]", args)).splitlines()[-1].split()

    assert threads("['--threads', '3']")[:2] == ["3", "3"]
    assert threads("['--threads', '1']")[:2] == ["1", "1"]
    default = threads("[]")
    assert default[0] == default[1] == default[2]  # the default share, not torch's one thread per core


SPY = """
import os, sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            names = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
            print("torch imported with", *(os.environ.get(name) for name in names))
            sys.meta_path.remove(self)
sys.meta_path.insert(0, Spy())
import unnparse.cli.parser_app
import unnparse.runtime
"""


def test_openmp_threads_spin_briefly_then_sleep_unless_the_user_says_otherwise():
    assert _run_python(SPY).strip() == "torch imported with None 2000 1"
    assert _run_python(SPY, OMP_WAIT_POLICY="ACTIVE").strip() == "torch imported with ACTIVE None None"
    assert _run_python(SPY, OMP_WAIT_POLICY="PASSIVE").strip() == "torch imported with PASSIVE None None"
    assert _run_python(SPY, KMP_BLOCKTIME="200").strip() == "torch imported with None 2000 200"


def _sentences(tmp_path: Path, n: int, seed: int):
    path = tmp_path / f"s{seed}.conllu"
    path.write_text(conllu_text(n, seed, prefix=f"p{seed}"), encoding="utf-8")
    return read_conllu(path)


def test_train_tokenizer_stops_at_its_deadline(tmp_path):
    train, dev = _sentences(tmp_path, 400, 1), _sentences(tmp_path, 40, 2)
    lines: list[str] = []
    started = time.perf_counter()
    tokenizer, scores = tt.train_tokenizer(train, dev, steps=5000, seed=0, max_seconds=1.0, log=lines.append)
    elapsed = time.perf_counter() - started
    assert elapsed < 8.0, lines  # unbounded, the 20 passes over this text take far longer
    assert any("time budget (1 s) allows about" in line for line in lines), lines
    last = [line for line in lines if line.startswith("tokenizer update")][-1]
    done, planned = last.split()[2].rstrip(":").split("/")
    assert done == planned and int(done) < 100
    assert set(scores) == {"tokens", "sentences", "words"}  # evaluated on dev before it stopped
    assert tokenizer.segment("the dog saw a cat .")


def test_dev_sample_is_bounded_and_spread_over_the_dev_set(tmp_path):
    dev = _sentences(tmp_path, 300, 3)
    assert tt.dev_sample(dev, 10**9) == dev
    sample = tt.dev_sample(dev, 2000)
    text = sum(len(s.surface_text()) + 1 for s in sample)
    assert 1000 < text <= 2000 and len(sample) < len(dev)
    ids = [dev.index(s) for s in sample]
    assert ids == sorted(ids) and ids[0] == 0 and ids[-1] > len(dev) * 3 // 4
    assert tt.rule_scores(dev, max_chars=2000) == tt.rule_scores(sample, max_chars=10**9)


def test_budget_split_between_parser_and_tokenizer():
    assert budget.parser_minutes(None, 1000) is None
    assert budget.parser_minutes(10.0, 0) == 10.0
    assert budget.parser_minutes(10.0, 1000) == pytest.approx(10.0 * (1 - budget.TOKENIZER_SHARE))
    assert budget.seconds_left(None, 0.0) is None
    assert budget.seconds_left(2.0, 100.0, now=130.0) == pytest.approx(90.0)
    assert budget.seconds_left(0.5, 100.0, now=200.0) == 0.0


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    write_treebank(root / "data", n_train=40, n_dev=10)
    return root


def _train(root: Path, out: str, *extra: str):
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data"), "--output", str(root / out)]
    return runner.invoke(parser_app, [*args, "--epochs", "1", "--no-progress", *SMALL, *extra])


def test_max_minutes_covers_the_tokenizer(toy, monkeypatch):
    given: list[float | None] = []
    real = tt.train_tokenizer

    def quick(*args, **kwargs):
        given.append(kwargs.get("max_seconds"))
        return real(*args, **{**kwargs, "steps": 2})

    parser_budget: list[float | None] = []
    real_parser = training.train_parser

    def recorded(parser, train, dev, opts, *args, **kwargs):
        parser_budget.append(opts.max_minutes)
        return real_parser(parser, train, dev, opts, *args, **kwargs)

    monkeypatch.setattr(tt, "train_tokenizer", quick)
    monkeypatch.setattr(training, "train_parser", recorded)
    result = _train(toy, "budget", "--max-minutes", "0.5", "--tokenizer-steps", "500")
    assert result.exit_code == 0, result.output
    assert parser_budget == [pytest.approx(0.5 * (1 - budget.TOKENIZER_SHARE))]
    assert len(given) == 1 and given[0] is not None
    assert budget.MIN_TOKENIZER_SECONDS <= given[0] <= 30.0 * budget.TOKENIZER_SHARE + 30.0 * 0.85
    assert f"at most {given[0]:.0f} s" in result.stderr
    metrics = json.loads((toy / "budget" / "metrics.json").read_text())
    assert metrics  # the parser trained too


def test_tokenizer_skipped_when_the_budget_is_spent(toy):
    result = _train(toy, "spent", "--max-minutes", "0.01", "--tokenizer-steps", "500")
    assert result.exit_code == 0, result.output
    assert "tokenizer not trained" in result.stderr and "--max-minutes" in result.stderr
    assert not (toy / "spent" / tt.TOKENIZER_FILE).exists()


def test_threads_reach_torch_for_the_parser_commands(toy, monkeypatch):
    seen: list[int | None] = []
    monkeypatch.setattr("unnparse.runtime.set_threads", lambda n=None: seen.append(n) or 1)
    assert _train(toy, "model", "--tokenizer-steps", "0", "--threads", "1").exit_code == 0
    model = str(toy / "model")
    result = runner.invoke(parser_app, ["parse", "--model", model, "--threads", "2", "--device", "cpu"], input="A dog.")
    assert result.exit_code == 0, result.output
    data = ["--treebank", "UD_Toy-Test", "--data-dir", str(toy / "data")]
    result = runner.invoke(parser_app, ["evaluate", "--model", model, *data, "--threads", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert seen == [1, 2, 3]


def test_parse_on_devices_shares_the_threads_among_the_workers(toy, monkeypatch):
    given: list[list[str]] = []

    def workers(args, input_file, names, **kwargs):
        given.append(list(args))
        return 0

    monkeypatch.setattr("unnparse.parser.multi_device.run_on_devices", workers)
    monkeypatch.setattr("unnparse.cpu_threads.default_threads", lambda: 4)
    if not (toy / "model" / "config.json").is_file():
        assert _train(toy, "model", "--tokenizer-steps", "0").exit_code == 0
    test = toy / "data" / "UD_Toy-Test" / "toy-ud-test.conllu"
    base = ["parse", "--model", str(toy / "model"), "--input", str(test), "--input-format", "conllu"]
    for extra in ([], ["--threads", "3"]):
        result = runner.invoke(parser_app, [*base, "--devices", "cpu,cpu", *extra])
        assert result.exit_code == 0, result.output
    threads = [args[args.index("--threads") + 1] for args in given]
    assert threads == ["2", "3"]  # two workers share the default of 4; a given number is each worker's


def test_train_tokenizer_command_has_a_time_budget(toy):
    if not (toy / "model" / "config.json").is_file():
        assert _train(toy, "model", "--tokenizer-steps", "0").exit_code == 0
    args = ["train-tokenizer", "--model", str(toy / "model"), "--treebank", "UD_Toy-Test"]
    result = runner.invoke(parser_app, [*args, "--data-dir", str(toy / "data"), "--max-minutes", "0.05"])
    assert result.exit_code == 0, result.output
    assert "tokenizer not trained" in result.stderr  # 3 s: under the floor, said in one line
    assert not (toy / "model" / tt.TOKENIZER_FILE).exists()
