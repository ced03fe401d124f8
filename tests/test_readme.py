"""The documentation stays true: every option the command lines of README.md and BENCHMARKS.md use exists, and
the README's engine and Python API examples run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
import typer

from unnparse.cli.parser_app import app as parser_app
from unnparse.cli.unn_app import app as unn_app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = ("README.md", "BENCHMARKS.md")


def _code_blocks(language: str, document: Path = README) -> list[str]:
    """The fenced code blocks of ``document`` whose language (empty when none is given) matches ``language``."""
    blocks, lang, lines = [], None, []
    for line in document.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                if re.fullmatch(language, lang):
                    blocks.append("\n".join(lines) + "\n")
                lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def _command_lines(document: str = "README.md") -> list[list[str]]:
    """Each `unnparse …` / `unn …` invocation in the code blocks of ``document``, as words (continuations joined)."""
    commands = []
    for block in _code_blocks("(?:bash|sh)?", ROOT / document):
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            for words in _shell_commands(line.replace("…", "")):
                if "-m" in words:  # torchrun … -m unnparse train …
                    words = words[words.index("-m") + 1 :]
                if words and Path(words[0]).name in ("unnparse", "unn"):  # also .venv/bin/unnparse
                    commands.append([Path(words[0]).name, *words[1:]])
    return commands


def _shell_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ``|``, ``;``, ``&``, ``do`` and ``done`` outside quotes; a
    comment dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("do", "done") or set(token) <= set(";&|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def _resolve(words: list[str]):
    """The (click) command that ``words`` run, and the words left for it."""
    group = typer.main.get_command(parser_app if words[0] == "unnparse" else unn_app)
    command, rest = group, words[1:]
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


def test_the_documentation_has_command_lines_to_check():
    assert len(_command_lines("BENCHMARKS.md")) >= 15
    commands = _command_lines()
    assert len(commands) >= 15
    for expected in (["unnparse", "train"], ["unnparse", "parse"], ["unn", "mnist", "train"], ["unn", "seqcomplete"]):
        assert any(words[: len(expected)] == expected for words in commands), expected


@pytest.mark.parametrize(
    "words", [words for doc in DOCUMENTS for words in _command_lines(doc)], ids=lambda words: " ".join(words)[:60]
)
def test_every_option_the_documentation_uses_exists(words):
    command, rest = _resolve(words)
    assert not hasattr(command, "commands"), f"{' '.join(words)}: no such command"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    used = {word.split("=", 1)[0] for word in rest if word.startswith("--")}
    assert used <= known, f"{' '.join(words)}: unknown {sorted(used - known)}"


def test_the_engine_example_runs():
    (example,) = [block for block in _code_blocks("python") if "unnparse.engine" in block]
    batch = 5
    scope = {"x": torch.randn(batch, 784), "h0": torch.zeros(batch, 64), "y0": torch.zeros(batch, 10)}
    exec(example, scope)  # noqa: S102 - the README's own code
    states = scope["out"].states
    assert states["H"].shape == (batch, 64) and states["Y"].shape == (batch, 10)
    assert bool((states["H"] >= 0).all()) and bool((states["H"] > 0).any())  # relu of a non-zero input
    torch.testing.assert_close(states["Y"].sum(-1), torch.ones(batch))  # softmax: a distribution over 10 classes


def test_the_python_api_example_runs(tmp_path, capsys):
    from typer.testing import CliRunner

    from tests.parser_fixtures import write_treebank

    write_treebank(tmp_path / "data")
    model = tmp_path / "model"
    small = ["--hidden", "16", "--rel-hidden", "8", "--lstm-hidden", "16", "--lstm-layers", "1", "--epochs", "1"]
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(tmp_path / "data"), "--output", str(model)]
    result = CliRunner().invoke(parser_app, [*args, *small, "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    (example,) = [block for block in _code_blocks("python") if "parser = load(" in block]
    assert '"models/UD_English-Sample"' in example
    exec(example.replace('"models/UD_English-Sample"', repr(str(model))), {})  # noqa: S102 - the README's own code
    printed = capsys.readouterr().out
    assert "# text = The cat sat on the mat." in printed and "# text = It was happy." in printed
    words = [line.split("\t") for line in printed.splitlines() if line and not line.startswith("#")]
    assert [w[1] for w in words] == ["The", "cat", "sat", "on", "the", "mat", ".", "It", "was", "happy", "."]
    assert all(w[6].isdigit() for w in words)  # every word has a head
