"""Parse speed on the CPU: float32 against bfloat16, and UDPipe 1 as the peer, all measured in the same run.

For each treebank: the scratch model ``MODELS/TREEBANK-scratch-k1`` parses the test file (read CoNLL-U, parse,
write CoNLL-U; model loaded, after a warm-up) in float32 and in bfloat16 (so does ``ENSEMBLES/TREEBANK-ensemble``
when ``--ensembles`` is given), and UDPipe 1 (``UDPIPE_MODELS/TREEBANK.udpipe``, run by ``bench/udpipe1.py`` under
``--udpipe-python``) processes the same file. The systems are interleaved for ``--rounds`` rounds; each round
takes the best of 3 timings; the table gives the best round and the median round. Also the accuracy of each on that
file. ``--final-marginals`` adds float32 parsing that also computes the tree marginals of the last update of Y (what
parsing did before decoding stopped asking for them), to show what leaving them out saves. Writes the
``parse-speed`` section of BENCHMARKS.md.

    .venv/bin/python bench/parse_speed.py --models models/bench-k1 --udpipe-python /tmp/udpipe1/bin/python \\
        --udpipe-models models/udpipe1 --treebanks UD_English-ParTUT --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402
from unnparse.conllu import iter_conllu, read_conllu  # noqa: E402
from unnparse.evaluation.attachment import score_sentences  # noqa: E402
from unnparse.io_utils import atomic_output  # noqa: E402
from unnparse.parser import load  # noqa: E402
from unnparse.parser.parser import Parser  # noqa: E402
from unnparse.runtime import cpu_has_native_bf16  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"


def time_unnparse(parser: Parser, test: Path, out: Path, repeats: int = 3, batch_tokens: int = 4000) -> float:
    """Best of ``repeats``: read, parse and write the whole file with the model loaded."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        with atomic_output(out, "w") as fh:
            for parsed in parser.predict(iter_conllu(test, require_heads=False), batch_tokens=batch_tokens):
                fh.write(parsed.sentence.to_conllu())
        best = min(best, time.perf_counter() - t0)
    return best


def time_udpipe(python: str, model: Path, test: Path, out: Path) -> float:
    """Best of 3 of UDPipe 1 processing the file (model loaded), in its own process and Python."""
    cmd = [python, str(ROOT / "bench" / "udpipe1.py"), "parse", str(model), str(test), str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


FINAL_MARGINALS_NOTE = (
    " *Final marginals computed*: parsing as it was before the tree marginals of the last update of Y, which "
    "decoding does not read, were left out (the same trees)."
)


def with_final_marginals(parser: Parser) -> Parser:
    """The parser, made to compute the last update of Y in full (its tree marginals) although decoding ignores it."""
    infer = parser.model.unn.infer
    parser.model.unn.infer = lambda *a, **kw: infer(*a, **{**kw, "activate_last": True})  # type: ignore[method-assign]
    return parser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models" / "bench-k1", help="folder of scratch K=1 models")
    ap.add_argument("--treebanks", nargs="+", default=["UD_English-ParTUT"])
    ap.add_argument("--udpipe-python", help="a Python with ufal.udpipe (omit to skip UDPipe 1)")
    ap.add_argument("--udpipe-models", type=Path, help="folder holding TREEBANK.udpipe models")
    ap.add_argument("--ensembles", type=Path, help="folder holding TREEBANK-ensemble directories (bench/ensemble.py)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--section", default="parse-speed")
    ap.add_argument(
        "--final-marginals",
        action="store_true",
        help="also time float32 parsing that computes the tree marginals of the last update of Y, unused by decoding",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path("/tmp") / f"parse-speed-{os.getpid()}.conllu"
    rows = []
    for tb in args.treebanks:
        test = next((SHARED / tb).glob("*-ud-test.conllu"))
        gold = read_conllu(test)
        words = sum(len(s) for s in gold)
        model = args.models / f"{tb}-scratch-k1"
        systems: dict[str, object] = {
            "unnparse float32": Parser.load(model, precision="float32"),
            "unnparse bfloat16": Parser.load(model, precision="bfloat16"),
        }
        if args.final_marginals:
            systems["unnparse float32, final marginals computed"] = with_final_marginals(Parser.load(model))
        ensemble = args.ensembles / f"{tb}-ensemble" if args.ensembles else None
        if ensemble is not None and ensemble.is_dir():
            systems["unnparse ensemble of 2, float32"] = load(ensemble, precision="float32")
            systems["unnparse ensemble of 2, bfloat16"] = load(ensemble, precision="bfloat16")
        udpipe_model = args.udpipe_models / f"{tb}.udpipe" if args.udpipe_models else None
        if args.udpipe_python and udpipe_model is not None and udpipe_model.is_file():
            systems["UDPipe 1 (gold tags)"] = udpipe_model
        times: dict[str, list[float]] = {name: [] for name in systems}
        scores: dict[str, dict] = {}
        for name, system in systems.items():  # warm-up and accuracy of each
            if isinstance(system, Parser):
                list(system.predict(gold[:8]))
                time_unnparse(system, test, out, repeats=1)
            else:
                time_udpipe(str(args.udpipe_python), Path(str(system)), test, out)
            scores[name] = score_sentences(gold, read_conllu(out)).as_dict()
        for r in range(args.rounds):
            for name, system in systems.items():
                if isinstance(system, Parser):
                    seconds = time_unnparse(system, test, out)
                else:
                    seconds = time_udpipe(str(args.udpipe_python), Path(str(system)), test, out)
                times[name].append(seconds)
            print(f"{tb} round {r + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()), flush=True)
        base = min(times["unnparse float32"])
        for name, t in times.items():
            best, median = min(t), statistics.median(t)
            rows.append(
                f"| {tb} | {name} | {scores[name]['uas']:.2f} / {scores[name]['las']:.2f} | {len(gold) / best:,.0f} | "
                f"{len(gold) / median:,.0f} | {words / best:,.0f} | {base / best:.2f} |"
            )
    out.unlink(missing_ok=True)
    native = "yes" if cpu_has_native_bf16() else "no"
    body = (
        f"{measured_on(f'native bfloat16: {native}')}, nothing else running. Each system reads the "
        f"test file's CoNLL-U (gold tokenization), parses it and writes CoNLL-U, with its model loaded; unnparse with "
        f"{args.threads} threads, UDPipe 1 single-threaded (it has no parallel parser) with the gold tags of its "
        f"input as features. {args.rounds} interleaved rounds, each the best of 3 timings. Speed-up: against unnparse "
        f"float32 in the same run.{FINAL_MARGINALS_NOTE if args.final_marginals else ''}\n\n"
        f"Command: `{command_line()}`\n\n"
        "| treebank | system | UAS / LAS | sent/s (best round) | sent/s (median round) | words/s (best) | "
        "speed-up |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_section(args.section, "Parse speed on the CPU: float32, bfloat16 and UDPipe 1", body)
    print(body)


if __name__ == "__main__":
    main()
