"""Structured distillation: the ensemble's accuracy at one smaller model's speed, against UDPipe 1, in one run.

Per treebank, on this machine (each stage skipped when its output exists, so an interrupted run continues):

1. **Teachers**: two scratch K=1 members (character CNN and character BiLSTM, ``--seed 1``, the treebank's
   ``--member-options``) trained side by side for ``--teacher-minutes`` with one thread each (as
   ``bench/ensemble.py``), combined by ``unnparse ensemble``.
2. **Students and controls**, two jobs at a time with one thread each, ``--student-minutes`` of training: the
   student is ``unnparse train --teacher ENSEMBLE`` with the member options and ``--student-options`` (a smaller
   network); the control is the same command without the teacher (what the smaller network learns alone).
   UDPipe 1 (parser only, gold UPOS/XPOS/FEATS as features: ``bench/udpipe1.py train``) trains as one more job.
3. **Measurement**, alone on the machine: accuracy on the test split (gold tokenization; unnparse reads words only,
   UDPipe 1 the gold tags) and speed: reading, parsing and writing the test file's CoNLL-U with the model loaded
   (unnparse with ``--threads`` threads, UDPipe 1 single-threaded as it parses), systems interleaved for
   ``--rounds`` rounds, each round the best of 3 timings, the best round reported.

Writes the ``distillation`` section of BENCHMARKS.md.

    .venv/bin/python bench/distill.py --udpipe-python /tmp/udpipe1/bin/python --out models/distill
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402
from bench.ensemble import EXE, MEMBERS, SHARED, TREEBANKS  # noqa: E402  (the same teachers as there)
from bench.parse_speed import time_udpipe, time_unnparse  # noqa: E402

#: the members' options chosen on each treebank's dev set ("Parser options, A/B" in BENCHMARKS.md)
MEMBER_OPTIONS = {
    "UD_English-ParTUT": "--batch-tokens 500",
    "UD_Afrikaans-AfriBooms": "--batch-tokens 500 --tag-layer 1",
    "UD_Telugu-MTG": "--lstm-layers 2",
}
STUDENT_OPTIONS = "--char-encoder cnn --seed 1 --lstm-layers 2 --rel-hidden 64"


def run(cmd: list[str], log: Path | None = None) -> float:
    """Run a command with one OpenMP thread (its output to ``log``); its wall-clock seconds."""
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, env=env)
    return time.perf_counter() - started


def train_command(treebank: str, output: Path, minutes: float, options: list[str]) -> list[str]:
    return [
        *[EXE, "train", "--treebank", treebank, "--data-dir", str(SHARED), "--output", str(output)],
        *["--epochs", "100000", "--max-minutes", str(minutes), "--patience", "100000", "--device", "cpu"],
        *["--threads", "1", "--no-progress", "--tokenizer-steps", "0", *MEASURED_WITH, *options],
    ]


_RECORD = threading.Lock()


def record(times: Path, key: str, value: dict) -> None:
    """Add ``key: value`` to the JSON file ``times`` (jobs finish in parallel threads)."""
    with _RECORD:
        data = json.loads(times.read_text()) if times.exists() else {}
        data[key] = value
        times.write_text(json.dumps(data, indent=1))


def train_teachers(tb: str, args: argparse.Namespace) -> None:
    opts = MEMBER_OPTIONS.get(tb, "").split()
    jobs = [(m, args.out / f"{tb}-{m}") for m in MEMBERS if not (args.out / f"{tb}-{m}" / "config.json").exists()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(
            pool.map(
                lambda job: run(
                    train_command(tb, job[1], args.teacher_minutes, [*MEMBERS[job[0]], *opts]),
                    args.out / f"{tb}-{job[0]}.log",
                ),
                jobs,
            )
        )
    ensemble = args.out / f"{tb}-ensemble"
    if not ensemble.exists():
        run([EXE, "ensemble", *(str(args.out / f"{tb}-{m}") for m in MEMBERS), "--output", str(ensemble)])


def second_stage_jobs(tb: str, args: argparse.Namespace) -> list[tuple[str, list[str], Path]]:
    """(name, command, output) of the student, the control and UDPipe 1 of ``tb`` that are not there yet."""
    opts = [*MEMBER_OPTIONS.get(tb, "").split(), *args.student_options.split()]
    teacher = ["--teacher", str(args.out / f"{tb}-ensemble")]
    jobs = []
    for name, extra in (("student", teacher), ("control", [])):
        out = args.out / f"{tb}-{name}"
        if not (out / "config.json").exists():
            jobs.append((f"{tb}-{name}", train_command(tb, out, args.student_minutes, [*opts, *extra]), out))
    udpipe = args.out / "udpipe1" / f"{tb}.udpipe"
    if args.udpipe_python and not udpipe.exists():
        script = str(ROOT / "bench" / "udpipe1.py")
        jobs.append((f"{tb}-udpipe1", [args.udpipe_python, script, "train", str(SHARED / tb), str(udpipe)], udpipe))
    return jobs


def train_second_stage(args: argparse.Namespace) -> None:
    jobs = [job for tb in args.treebanks for job in second_stage_jobs(tb, args)]

    def one(job: tuple[str, list[str], Path]) -> None:
        name, cmd, _ = job
        log = args.out / f"{name}.log"
        seconds = run(cmd, log)
        found = re.search(r"teacher: .* in ([0-9.]+) s", log.read_text(errors="replace"))
        targets_s = float(found[1]) if found else None
        record(args.out / "times.json", name, {"seconds": round(seconds, 1), "teacher_targets_s": targets_s})

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, jobs))


def epochs(model: Path) -> str:
    history = json.loads((model / "metrics.json").read_text())
    config = json.loads((model / "config.json").read_text())
    return f"{len(history)} ({config['best_epoch']})"


def measure(tb: str, args: argparse.Namespace) -> list[str]:
    from unnparse.conllu import read_conllu
    from unnparse.conllu.sentence import TAG_COLUMNS
    from unnparse.evaluation.attachment import score_sentences
    from unnparse.parser import load

    test = next((SHARED / tb).glob("*-ud-test.conllu"))
    gold = read_conllu(test)
    words_only = args.out / f"{tb}-test-words.conllu"
    words_only.write_text("".join(s.without_tags(TAG_COLUMNS).to_conllu() for s in gold), encoding="utf-8")
    out = args.out / f"{tb}-parsed.conllu"
    systems: dict[str, object] = {
        "ensemble of 2 (the teacher)": load(args.out / f"{tb}-ensemble", precision="float32"),
        "one model (the char-CNN member)": load(args.out / f"{tb}-cnn", precision="float32"),
        "student, float32": load(args.out / f"{tb}-student", precision="float32"),
        "student, int8": load(args.out / f"{tb}-student", precision="int8"),
        "student's network, no teacher": load(args.out / f"{tb}-control", precision="float32"),
    }
    udpipe = args.out / "udpipe1" / f"{tb}.udpipe"
    if args.udpipe_python and udpipe.exists():
        systems["UDPipe 1 (gold tags)"] = udpipe
    times: dict[str, list[float]] = {name: [] for name in systems}
    scores = {}
    for name, system in systems.items():  # warm-up (the int8 copy made) and accuracy
        if isinstance(system, Path):
            time_udpipe(args.udpipe_python, system, test, out)
        else:
            time_unnparse(system, words_only, out, repeats=1)
        scores[name] = score_sentences(gold, read_conllu(out)).as_dict()
    for r in range(args.rounds):
        for name, system in systems.items():
            if isinstance(system, Path):
                times[name].append(time_udpipe(args.udpipe_python, system, test, out))
            else:
                times[name].append(time_unnparse(system, words_only, out))
        print(f"{tb} round {r + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()), flush=True)
    udpipe_best = min(times["UDPipe 1 (gold tags)"]) if "UDPipe 1 (gold tags)" in times else None
    rows = []
    for name, t in times.items():
        s, best = scores[name], min(t)
        ratio = f"{udpipe_best / best:.2f}" if udpipe_best else ""
        rows.append(
            f"| {tb} | {name} | {s['uas']:.2f} | {s['las']:.2f} | {s['exact_match']:.2f} | {len(gold) / best:,.0f} | "
            f"{len(gold) / statistics.median(t):,.0f} | {ratio} |"
        )
        print(rows[-1], flush=True)
    out.unlink(missing_ok=True)
    words_only.unlink(missing_ok=True)
    return rows


def cost_rows(tb: str, args: argparse.Namespace) -> str:
    times = json.loads((args.out / "times.json").read_text()) if (args.out / "times.json").exists() else {}
    student, control = times.get(f"{tb}-student", {}), times.get(f"{tb}-control", {})
    udpipe = times.get(f"{tb}-udpipe1", {})
    return (
        f"| {tb} | {epochs(args.out / f'{tb}-cnn')} / {epochs(args.out / f'{tb}-lstm')} | "
        f"{student.get('teacher_targets_s') or 0:.0f} | {epochs(args.out / f'{tb}-student')} | "
        f"{student.get('seconds', 0) / 60:.1f} | {epochs(args.out / f'{tb}-control')} | "
        f"{control.get('seconds', 0) / 60:.1f} | {udpipe.get('seconds', 0) / 60:.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "distill")
    ap.add_argument("--teacher-minutes", type=float, default=15.0, help="each member's budget (two side by side)")
    ap.add_argument("--student-minutes", type=float, default=15.0, help="the student's and the control's budget")
    ap.add_argument("--student-options", default=STUDENT_OPTIONS, help="the student's network (and the control's)")
    ap.add_argument("--udpipe-python", help="a Python with ufal.udpipe (omit to leave UDPipe 1 out)")
    ap.add_argument("--threads", type=int, default=2, help="threads when measuring parse speed")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark needs the UD treebanks in ../shared/ud")
    args.out.mkdir(parents=True, exist_ok=True)
    for tb in args.treebanks:
        train_teachers(tb, args)
    train_second_stage(args)
    torch.set_num_threads(args.threads)
    rows = [row for tb in args.treebanks for row in measure(tb, args)]
    costs = [cost_rows(tb, args) for tb in args.treebanks]
    body = (
        f"{measured_on()}, nothing else running while timing. Test split, gold tokenization; unnparse reads the "
        f"words only (no tags), UDPipe 1 (parser only) the gold UPOS/XPOS/FEATS. Teachers: two scratch K=1 members "
        f"(char CNN, char BiLSTM; the treebank's member options) trained side by side for {args.teacher_minutes:g} "
        f"minutes with one thread each, combined by `unnparse ensemble`. Student: `unnparse train --teacher "
        f"ENSEMBLE` with the member options and `{args.student_options}`, {args.student_minutes:g} minutes on one "
        f"thread; the control: the same command without `--teacher`. Speed: read, parse and write the test file's "
        f"CoNLL-U with the model loaded, unnparse on {args.threads} threads, UDPipe 1 on one (it has no parallel "
        f"parser); {args.rounds} interleaved rounds, each the best of 3 timings; *vs UDPipe 1*: its best time over "
        f"the system's.\n\nCommand: `{command_line()}`\n\n"
        "| treebank | system | UAS | LAS | exact | sent/s (best round) | sent/s (median round) | vs UDPipe 1 |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "What each costs to train (wall clock; the members side by side on the two cores, the others one core "
        "each): epochs (best), the teacher's targets (arc marginals and label probabilities of every training "
        "sentence, computed before the student's budget starts), minutes.\n\n"
        "| treebank | teacher members: epochs (best) | teacher targets s | student epochs (best) | student min | "
        "control epochs (best) | control min | UDPipe 1 min |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(costs)
        + "\n"
    )
    write_section("distillation", "Distillation: the ensemble in one smaller model, beside UDPipe 1", body)
    print(body)


if __name__ == "__main__":
    main()
