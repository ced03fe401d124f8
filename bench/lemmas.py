"""The whole UD annotation against UDPipe 1: lemmas, tags, and every CoNLL 2018 score on EN/AF/TE test.

For each treebank, in the same run:

- unnparse is trained with its defaults (scratch encoder, the lemmatizer on) within ``--minutes``, and again with
  ``--lemma-loss 0`` (no lemmatizer) on the same budget and seed, to see what the lemma head costs the parser;
- UDPipe 1 is trained as a whole pipeline (tokenizer, tagger and lemmatizer, parser; ``bench/udpipe1.py train
  --full``, its default options) in its own Python (``--udpipe-python``, with ``ufal.udpipe``);
- both parse the test set twice: its gold words with every tag, lemma and tree cleared (``--input conllu``), and its
  raw text (tokenized and split by each system's own tokenizer);
- every output is scored by ``unnparse evaluate`` (the CoNLL 2018 definitions; through the text for raw text).

Training runs ``--jobs`` at a time, each with ``--threads`` threads. Writes the ``lemmas`` section of BENCHMARKS.md.

    .venv/bin/python bench/lemmas.py --minutes 8 --jobs 2 --threads 1 --udpipe-python /tmp/udpipe1/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
TREEBANKS = ("UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG")
SCORES = ("lemmas", "upos", "ufeats", "alltags", "uas", "las", "mlas", "blex")
UNNPARSE = [sys.executable, "-m", "unnparse"]


def _run(cmd: list[str], log: Path | None = None) -> str:
    """Run ``cmd``; its stdout (stderr to ``log`` when given). A failure stops the benchmark naming the command."""
    started = time.perf_counter()
    with open(log, "w") if log is not None else open("/dev/null", "w") as err:  # noqa: SIM115
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}" + (f" (see {log})" if log else ""))
    print(f"{time.perf_counter() - started:7.1f} s  {' '.join(cmd)[:150]}", flush=True)
    return done.stdout


def _test_file(treebank: str) -> Path:
    return next((SHARED / treebank).glob("*-ud-test.conllu"))


def _cleared_and_text(treebank: str, out: Path) -> tuple[Path, Path]:
    """The test set with every predicted column cleared (its words kept), and its raw text."""
    from unnparse.conllu import read_conllu, write_conllu
    from unnparse.evaluation.text_alignment import corpus_text

    gold = read_conllu(_test_file(treebank))
    cleared = out / f"{treebank}-test-cleared.conllu"
    blank = []
    for sentence in gold:
        s = sentence.without_tags(("upos", "xpos", "feats", "lemma"))
        for token in s.word_tokens:
            token["head"], token["deprel"], token["deps"] = None, "_", None
        blank.append(s)
    write_conllu(blank, cleared)
    text = out / f"{treebank}-test.txt"
    text.write_text(corpus_text(gold) + "\n", encoding="utf-8")
    return cleared, text


def _scores(evaluation: str) -> dict[str, float]:
    data = json.loads(evaluation)
    return {name: data["scores"][name]["f1"] for name in SCORES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=list(TREEBANKS))
    ap.add_argument("--minutes", type=float, default=8.0, help="training budget of each unnparse model")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "bench-lemma")
    ap.add_argument("--udpipe-python", default="/tmp/udpipe1/bin/python")
    ap.add_argument("--reuse", action="store_true", help="keep models already in --out instead of training again")
    ap.add_argument(
        "--train",
        choices=["all", "unnparse", "udpipe", "none"],
        default="all",
        help="which models to train before scoring (none: score what --out holds)",
    )
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    data = ["--data-dir", str(SHARED), "--threads", str(args.threads), "--device", "cpu"]

    def unnparse_job(treebank: str, variant: str) -> None:
        model = out / f"{treebank}-{variant}"
        if args.reuse and (model / "config.json").is_file():
            return
        extra = ["--lemma-loss", "0"] if variant == "nolemma" else []
        cmd = [*UNNPARSE, "train", "--treebank", treebank, *data, "--output", str(model), "--overwrite"]
        cmd += ["--max-minutes", str(args.minutes), "--seed", str(args.seed), "--no-progress", *MEASURED_WITH]
        cmd += ["--epochs", "30", *extra]  # the defaults these scores were measured with
        _run(cmd, out / f"{treebank}-{variant}.train.log")

    def udpipe_job(treebank: str) -> None:
        model = out / f"{treebank}.udpipe"
        if args.reuse and model.is_file():
            return
        cmd = [args.udpipe_python, "bench/udpipe1.py", "train", "--full", str(SHARED / treebank), str(model)]
        _run(cmd, out / f"{treebank}.udpipe.log")

    jobs = [(udpipe_job, (tb,)) for tb in args.treebanks] if args.train in ("all", "udpipe") else []
    if args.train in ("all", "unnparse"):
        jobs += [(unnparse_job, (tb, v)) for tb in args.treebanks for v in ("lemma", "nolemma")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(fn, *fn_args) for fn, fn_args in jobs]:
            future.result()

    rows: list[str] = []
    for tb in args.treebanks:
        test = _test_file(tb)
        cleared, text = _cleared_and_text(tb, out)
        evaluate = [*UNNPARSE, "evaluate", "--json", "--threads", str(args.threads), "--device", "cpu"]
        results: list[tuple[str, str, dict[str, float]]] = []
        for variant, label in (("lemma", "unnparse"), ("nolemma", "unnparse, no lemmatizer")):
            model = ["--model", str(out / f"{tb}-{variant}"), "--input", str(test)]
            results.append((label, "gold words", _scores(_run([*evaluate, *model]))))
            if variant == "lemma":
                results.append((label, "raw text", _scores(_run([*evaluate, *model, "--raw-text"]))))
        udpipe_model = str(out / f"{tb}.udpipe")
        for source, fmt, label in ((cleared, "conllu", "gold words"), (text, "text", "raw text")):
            pred = out / f"{tb}-udpipe-{fmt}.conllu"
            _run(
                [args.udpipe_python, "bench/udpipe1.py", "process", udpipe_model, str(source), str(pred)]
                + ["--input", fmt]
            )
            alignment = "words" if fmt == "conllu" else "characters"
            scored = _run([*evaluate, "--gold", str(test), "--pred", str(pred), "--alignment", alignment])
            results.append(("UDPipe 1", label, _scores(scored)))
        for system, source, scores in results:
            cells = " | ".join(f"{scores[name]:.2f}" for name in SCORES)
            rows.append(f"| {tb} | {system} | {source} | {cells} |")
    header = "| treebank | system | input | " + " | ".join(
        {"lemmas": "Lemmas", "upos": "UPOS", "ufeats": "UFeats", "alltags": "AllTags", "uas": "UAS", "las": "LAS",
         "mlas": "MLAS", "blex": "BLEX"}[name] for name in SCORES
    ) + " |"  # fmt: skip
    body = (
        f"{measured_on(f'{args.threads} thread(s) per job, {args.jobs} jobs at a time')}. Test sets, F1 of the CoNLL "
        "2018 scores (`unnparse evaluate`: with the gold words, and through the text for raw text). unnparse: "
        f"`unnparse train` defaults (scratch encoder, K = 1, the lemmatizer on), {args.minutes:g} minutes of "
        "training with the tokenizer, seed "
        f"{args.seed}; the same without the lemmatizer (`--lemma-loss 0`). UDPipe 1: the whole pipeline trained with "
        "its default options (`bench/udpipe1.py train --full`). No setting was tuned on these treebanks.\n\n"
        f"Command: `{command_line()}`\n\n" + header + "\n|---|---|---|" + "---|" * len(SCORES) + "\n"
        + "\n".join(rows) + "\n"
    )  # fmt: skip
    write_section("lemmas", "Lemmas and every CoNLL 2018 score, beside UDPipe 1", body)
    print(body)


if __name__ == "__main__":
    main()
