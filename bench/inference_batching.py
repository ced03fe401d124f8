"""Parse speed with the two ways of cutting a file into inference batches, measured in the same run.

*one bucket*: sentences sorted by length and cut only where the padded-token budget is reached (fewest, fullest
batches; ``token_budget_batches(..., n_buckets=1)``). *bounded padding*: the same, also cut where padding would
pass a quarter of the real positions (``inference_batches``, what ``unnparse parse`` does). For each treebank a
parser is built from its training file with random weights (speed does not depend on them) and parses the test file
end to end (read, parse, write CoNLL-U), the arms alternating, best of ``--rounds``; with ``--bert`` the encoder is
BERT-base built from its configuration with random weights (as in ``bench/gpu_parser.py``).

    .venv/bin/python bench/inference_batching.py --threads 1
    .venv/bin/python bench/inference_batching.py --bert --tokenizer DIR --treebanks UD_English-ParTUT --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import unnparse.parser.parser as parser_module  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402
from bench.parse_speed import time_unnparse  # noqa: E402
from unnparse.conllu import read_conllu  # noqa: E402
from unnparse.parser.batching import inference_batches, token_budget_batches  # noqa: E402
from unnparse.parser.parser import Parser, default_config  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
TREEBANKS = ["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"]


def one_bucket(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    return token_budget_batches(lengths, batch_tokens, shuffle=False, n_buckets=1)


ARMS = {"one bucket": one_bucket, "bounded padding": inference_batches}


def measure(parser: Parser, test: Path, batch_tokens: int, rounds: int, tmp: Path) -> dict[str, float]:
    """Best seconds of each arm, the arms alternating round by round."""
    best = dict.fromkeys(ARMS, float("inf"))
    try:
        for _ in range(rounds):
            for name, cut in ARMS.items():
                parser_module.inference_batches = cut  # type: ignore[assignment]
                best[name] = min(best[name], time_unnparse(parser, test, tmp / "out.conllu", 1, batch_tokens))
    finally:
        parser_module.inference_batches = inference_batches
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--batch-tokens", type=int, nargs="+", default=[4000, 10000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bert", action="store_true", help="a BERT-base-sized random encoder instead of the scratch one")
    ap.add_argument("--tokenizer", type=Path, help="with --bert: a fast WordPiece tokenizer directory")
    ap.add_argument("--section", default="inference-batching")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for tb in args.treebanks:
            folder = args.data_dir / tb
            train_files, test_files = sorted(folder.glob("*-ud-train.conllu")), sorted(folder.glob("*-ud-test.conllu"))
            if not train_files or not test_files:
                sys.exit(f"{folder}: no *-ud-train.conllu / *-ud-test.conllu")
            train = read_conllu(train_files[0])
            options = {}
            if args.bert:
                from bench.gpu_parser import build_random_encoder

                encoder = tmp / f"encoder-{tb}"
                build_random_encoder(encoder, train_files[0], tokenizer=args.tokenizer, vocab=30000, tiny=False)
                options["encoder"] = str(encoder)
            torch.manual_seed(0)
            parser = Parser.build(default_config(**options), train)
            n = len(read_conllu(test_files[0]))
            for bt in args.batch_tokens:
                best = measure(parser, test_files[0], bt, args.rounds, tmp)
                a, b = (n / best[name] for name in ARMS)
                rows.append(f"| {tb} | {n} | {bt:,} | {a:,.1f} | {b:,.1f} | {b / a:.2f}x |")
                print(rows[-1], flush=True)
    encoder = "BERT-base-sized encoder with random weights" if args.bert else "scratch encoder (BiLSTM)"
    body = (
        f"{measured_on(f'{args.threads} thread(s)')}; {encoder}, K = 1, float32, parsing each test file end to "
        f"end, best of {args.rounds} alternating rounds.\n\nCommand: `{command_line()}`\n\n"
        "| treebank | sentences | --batch-tokens | one bucket (sent/s) | bounded padding (sent/s) | ratio |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(body)
    if not args.no_write:
        kind = "BERT-base-sized encoder" if args.bert else "scratch encoder"
        write_section(args.section, f"Inference batches, one bucket against bounded padding ({kind})", body)


if __name__ == "__main__":
    main()
