"""Parsing beside another job: the CPU seconds ``unnparse parse`` spends alone and while ``unnparse train`` runs.

On a machine that other jobs share, threads that spin while they wait for work take CPU time from those jobs and
from each other. This benchmark runs ``unnparse parse`` on a treebank's test file (CoNLL-U in, CoNLL-U out, the whole
command: start-up and model loading included) ``--repeats`` times alone, then as often while an ``unnparse train``
on the same treebank runs as another process (started ``--warmup`` seconds before, killed afterwards), and reports
the CPU seconds (user + system) of each parse process, its wall time, and the ratio of the medians (the target is at
most 1.3). The model is ``--model`` or, when that directory holds none, one trained first (``--train-minutes``, no
tokenizer). ``--omp-wait-policy ACTIVE`` runs both commands with spinning OpenMP threads, as before unnparse asked
for passive waiting, to show the difference. Writes the ``concurrent-parse`` section of BENCHMARKS.md (not with
``--no-report``) and prints the table and a JSON object.

    .venv/bin/python bench/concurrent_parse.py --model models/UD_English-ParTUT --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
UNNPARSE = [sys.executable, "-m", "unnparse"]
TARGET_RATIO = 1.3


@dataclass
class Run:
    """One parse: CPU seconds (user + system) of its process and wall seconds."""

    cpu: float
    wall: float


def run_measured(cmd: list[str], env: dict[str, str]) -> Run:
    """Run ``cmd`` to its end and return the CPU time of that process alone (from ``os.wait4``, so that the other
    children of this script, such as the concurrent trainer, are not counted).

    Raises:
        RuntimeError: the command failed (its stderr's last lines say why).
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {' / '.join(tail)}")
    return Run(usage.ru_utime + usage.ru_stime, wall)


def ensure_model(args: argparse.Namespace, env: dict[str, str]) -> Path:
    """``--model`` when it holds a model, else a model trained there (scratch encoder, no tokenizer)."""
    if (args.model / "config.json").is_file():
        return args.model
    print(f"no model in {args.model}: training one for {args.train_minutes} minutes", flush=True)
    cmd = [*UNNPARSE, "train", "--treebank", args.treebank, "--data-dir", str(args.data_dir)]
    cmd += ["--output", str(args.model), "--max-minutes", str(args.train_minutes), "--epochs", str(args.train_epochs)]
    cmd += ["--tokenizer-steps", "0", "--threads", str(args.threads), "--device", "cpu", "--no-progress"]
    cmd += MEASURED_WITH
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return args.model


def start_trainer(args: argparse.Namespace, env: dict[str, str], out_dir: Path) -> subprocess.Popen[bytes]:
    """``unnparse train`` on the treebank, long enough to outlast the parses, in its own process group."""
    cmd = [*UNNPARSE, "train", "--treebank", args.treebank, "--data-dir", str(args.data_dir)]
    cmd += ["--output", str(out_dir), "--epochs", "1000", "--max-minutes", "600", "--patience", "1000"]
    cmd += ["--tokenizer-steps", "0", "--threads", str(args.train_threads), "--device", "cpu", "--no-progress"]
    cmd += MEASURED_WITH
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End ``proc`` and its process group, and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def measure(args: argparse.Namespace) -> dict:
    """The runs alone and beside a trainer, as a JSON-ready dict."""
    env = dict(os.environ)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    model = ensure_model(args, env)
    test = args.input or next((args.data_dir / args.treebank).glob("*-ud-test.conllu"))
    with tempfile.TemporaryDirectory(prefix="concurrent-parse-") as tmp:
        parse = [*UNNPARSE, "parse", "--model", str(model), "--input", str(test), "--input-format", "conllu"]
        parse += ["--output", str(Path(tmp) / "parsed.conllu"), "--threads", str(args.threads), "--device", "cpu"]
        parse += ["--no-progress"]
        run_measured(parse, env)  # warm-up: file caches
        alone = [run_measured(parse, env) for _ in range(args.repeats)]
        print("alone: " + ", ".join(f"{r.cpu:.2f} s CPU" for r in alone), flush=True)
        trainer = start_trainer(args, env, Path(tmp) / "trainer")
        try:
            time.sleep(args.warmup)
            if trainer.poll() is not None:
                raise RuntimeError(f"the concurrent unnparse train ended early (exit status {trainer.returncode})")
            beside = [run_measured(parse, env) for _ in range(args.repeats)]
            if trainer.poll() is not None:
                raise RuntimeError("the concurrent unnparse train ended before the parses did")
        finally:
            stop(trainer)
        print("beside a trainer: " + ", ".join(f"{r.cpu:.2f} s CPU" for r in beside), flush=True)
    cpu_alone = statistics.median(r.cpu for r in alone)
    cpu_beside = statistics.median(r.cpu for r in beside)
    return {
        "model": str(model),
        "input": str(test),
        "threads": args.threads,
        "train_threads": args.train_threads,
        "omp_wait_policy": env.get("OMP_WAIT_POLICY")
        or "idle threads spin briefly, then sleep (GOMP_SPINCOUNT=2000, set by unnparse)",
        "load_average": os.getloadavg()[0],
        "alone": [asdict(r) for r in alone],
        "beside_train": [asdict(r) for r in beside],
        "cpu_alone": cpu_alone,
        "cpu_beside_train": cpu_beside,
        "ratio": cpu_beside / cpu_alone,
        "target_ratio": TARGET_RATIO,
    }


def table(result: dict) -> str:
    """The Markdown table of a :func:`measure` result."""
    rows = []
    for name, key in (("alone", "alone"), ("beside `unnparse train`", "beside_train")):
        runs = result[key]
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        ratio = cpu / result["cpu_alone"]
        rows.append(f"| {name} | {cpu:.2f} | {min(r['cpu'] for r in runs):.2f} | {wall:.2f} | {ratio:.2f} |")
    return (
        "| parse | CPU s (median) | CPU s (best) | wall s (median) | CPU ratio |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "UD_English-ParTUT", help="model directory")
    ap.add_argument("--treebank", default="UD_English-ParTUT", help="its test file is parsed; the trainer uses it")
    ap.add_argument("--data-dir", type=Path, default=SHARED, help="folder holding the treebank")
    ap.add_argument("--input", type=Path, help="CoNLL-U file to parse instead of the treebank's test file")
    ap.add_argument("--threads", type=int, default=2, help="--threads of unnparse parse")
    ap.add_argument("--train-threads", type=int, help="--threads of the concurrent unnparse train (default: --threads)")
    ap.add_argument("--repeats", type=int, default=3, help="parses alone and as many beside the trainer")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds the trainer runs before the first parse")
    ap.add_argument("--train-minutes", type=float, default=3.0, help="training of a missing --model")
    ap.add_argument("--train-epochs", type=int, default=30, help="training of a missing --model")
    ap.add_argument("--omp-wait-policy", choices=["ACTIVE", "PASSIVE"], help="OMP_WAIT_POLICY of both commands")
    ap.add_argument("--json", type=Path, help="also write the JSON result to this file")
    ap.add_argument("--section", default="concurrent-parse")
    ap.add_argument("--no-report", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    if args.repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be at least 1")
    args.train_threads = args.train_threads or args.threads
    try:
        result = measure(args)
    except (RuntimeError, subprocess.CalledProcessError, StopIteration, OSError) as err:
        sys.exit(f"error: {err}")
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    verdict = "within" if result["ratio"] <= TARGET_RATIO else "above"
    load = f"load average {result['load_average']:.2f} at the end"
    body = (
        f"{measured_on(load)}. `unnparse parse` "
        f"(--threads {args.threads}) reads {Path(result['input']).name} (CoNLL-U), parses it and writes CoNLL-U: the "
        f"CPU seconds (user + system) of the whole process, start-up and model loading included, median of "
        f"{args.repeats}; alone, then beside an `unnparse train --threads {args.train_threads}` of the same treebank "
        f"in another process. OpenMP wait policy: {result['omp_wait_policy']}. The ratio is {result['ratio']:.2f}, "
        f"{verdict} the target of {TARGET_RATIO}.\n\nCommand: `{command_line()}`\n\n" + table(result)
    )
    if not args.no_report:
        write_section(args.section, "Parsing beside another job: CPU seconds", body)
    print(body)
    print(text)


if __name__ == "__main__":
    main()
