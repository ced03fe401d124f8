"""Raw-text segmentation: the rule-based tokenizer against the one learnt from each treebank.

For each treebank: train the tokenizer and sentence splitter on the training text (as ``unnparse train`` does
after the parser, dev used to keep the best weights), then split the text of the test file with both and score
tokens, sentences and words by F1 over the text (CoNLL 2018 shared task). The text of a file is its sentences'
``# text`` joined by spaces (paragraphs at ``# newpar``), so sentence boundaries have to be found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402
from unnparse.conllu import read_conllu  # noqa: E402
from unnparse.evaluation.text_alignment import segmentation_scores  # noqa: E402
from unnparse.text.raw_text import iter_sentences_from_text  # noqa: E402
from unnparse.text.trained_tokenizer import labelled_paragraphs, rule_scores, train_tokenizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--section", default="tokenizer")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for treebank in args.treebanks:
        folder = SHARED / treebank
        train = [s for f in sorted(folder.glob("*-ud-train*.conllu")) for s in read_conllu(f)]
        dev = read_conllu(next(folder.glob("*-ud-dev.conllu")))
        test = read_conllu(next(folder.glob("*-ud-test.conllu")))
        started = time.perf_counter()
        tokenizer, dev_trained = train_tokenizer(train, dev, steps=args.steps, seed=args.seed, log=print)
        seconds = time.perf_counter() - started
        dev_rules = rule_scores(dev)
        kept = dev_trained["tokens"] + dev_trained["sentences"] >= dev_rules["tokens"] + dev_rules["sentences"]
        texts = [text for text, _labels in labelled_paragraphs(test)]
        chars = sum(len(t) for t in texts)
        segmenters = {"rules": iter_sentences_from_text, "trained": tokenizer.iter_sentences}
        for name, segment in segmenters.items():
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                predicted = [s for text in texts for s in segment([text])]
                best = min(best, time.perf_counter() - t0)
            scores = {k: v.f1 for k, v in segmentation_scores(test, predicted).items()}
            rows.append((treebank, name, scores, chars / best, seconds if name == "trained" else None, kept))
            print(treebank, name, scores, f"{chars / best:,.0f} chars/s", flush=True)
    lines = [
        f"{measured_on(f'{args.threads} thread(s)')}: test split, the text rebuilt from the CoNLL-U file (no "
        "paragraph breaks in these three treebanks, so every sentence boundary has to be found). *kept*: whether "
        "`unnparse train` keeps the trained tokenizer, which it does when its dev token F1 plus sentence F1 is at "
        "least the rules'. Speed: segmenting the test text, best of 3.",
        "",
        f"Command: `{command_line()}`",
        "",
        "| treebank | tokenizer | tokens F1 | sentences F1 | words F1 | characters/s | training s | kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for treebank, name, scores, speed, seconds, kept in rows:
        lines.append(
            f"| {treebank} | {name} | {scores['tokens']:.2f} | {scores['sentences']:.2f} | {scores['words']:.2f} | "
            f"{speed:,.0f} | {'' if seconds is None else f'{seconds:.0f}'} | "
            f"{('yes' if kept else 'no') if name == 'trained' else ''} |"
        )
    write_section(args.section, "Raw text: rule-based and trained tokenizers", "\n".join(lines))


if __name__ == "__main__":
    main()
