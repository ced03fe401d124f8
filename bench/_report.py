"""Write one benchmark's section of BENCHMARKS.md between its markers, leaving the other sections alone."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_section(name: str, title: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace (or append) the section between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n## {title}\n\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def measured_on(*notes: str) -> str:
    """``Measured DATE on this machine (N cores, torch VERSION[, notes])`` for a report's first line."""
    import torch

    details = ", ".join([f"{os.cpu_count()} cores", f"torch {torch.__version__}", *notes])
    return f"Measured {date.today().isoformat()} on this machine ({details})"


def command_line() -> str:
    """The command that ran the current benchmark script, as the report quotes it."""
    return f".venv/bin/python bench/{Path(sys.argv[0]).name} " + shlex.join(sys.argv[1:])


def revision_tree(revision: str, scratch: Path, root: Path) -> Path:
    """The source tree of ``revision``: ``root`` (the working tree) for ``.``, else a detached git worktree under
    ``scratch`` (remove it with :func:`remove_revision_trees`)."""
    import subprocess

    if revision == ".":
        return root
    target = scratch / revision.replace("/", "_").replace("~", "_")
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(target), revision], cwd=root, check=True)
    return target


def remove_revision_trees(trees: Iterable[Path], root: Path) -> None:
    """Remove the worktrees that :func:`revision_tree` added (the working tree is left alone)."""
    import subprocess

    for tree in trees:
        if tree != root:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)


def describe_revision(revision: str, root: Path) -> str:
    """``.`` as 'working tree', a revision as its short hash and subject."""
    import subprocess

    if revision == ".":
        return "working tree"
    out = subprocess.run(
        ["git", "log", "-1", "--format=%h %s", revision], cwd=root, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()
