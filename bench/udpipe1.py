"""UDPipe 1 as a peer: train its parser with gold tags as features, and time its parsing of a CoNLL-U file.

Runs with a Python that has ``ufal.udpipe`` (kept out of the project's dependencies), for example::

    python -m venv /tmp/udpipe1 && /tmp/udpipe1/bin/pip install ufal.udpipe
    /tmp/udpipe1/bin/python bench/udpipe1.py train ../shared/ud/UD_English-ParTUT models/udpipe1/en.udpipe
    /tmp/udpipe1/bin/python bench/udpipe1.py parse models/udpipe1/en.udpipe TEST.conllu OUT.conllu

``train`` builds a parser-only model (``Trainer.train("morphodita_parsito", train, dev, "none", "none",
Trainer.DEFAULT)``): no tokenizer, no tagger, so the parser reads the gold UPOS/XPOS/FEATS of its input.
``train --full`` builds the whole pipeline with UDPipe's default options: tokenizer and sentence splitter, tagger
and lemmatizer (UPOS, XPOS, FEATS, LEMMA), parser.
``parse`` prints one JSON line: sentences, words, the best of ``--repeats`` timings of processing the whole file
(CoNLL-U text in, CoNLL-U text out, model loaded) and the model loading time.
``process`` runs a full model on CoNLL-U (``--input conllu``: the words kept, tags, lemmas and tree predicted) or on
raw text (``--input text``: tokenized and split first) and writes CoNLL-U.

    /tmp/udpipe1/bin/python bench/udpipe1.py train --full ../shared/ud/UD_English-ParTUT models/udpipe1/en-full.udpipe
    /tmp/udpipe1/bin/python bench/udpipe1.py process models/udpipe1/en-full.udpipe TEST.txt OUT.conllu --input text
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _udpipe():
    try:
        import ufal.udpipe as udpipe  # type: ignore[import-not-found]
    except ImportError:
        sys.exit("ufal.udpipe is not installed in this Python (pip install ufal.udpipe)")
    return udpipe


def _load(udpipe, path: Path):
    fmt = udpipe.InputFormat.newConlluInputFormat()
    fmt.setText(path.read_text(encoding="utf-8"))
    sentences, err = udpipe.Sentences(), udpipe.ProcessingError()
    while True:
        sentence = udpipe.Sentence()
        if not fmt.nextSentence(sentence, err):
            break
        sentences.push_back(sentence)
    if err.occurred():
        sys.exit(f"{path}: {err.message}")
    return sentences


def train(treebank: Path, out: Path, full: bool = False) -> None:
    udpipe = _udpipe()
    train_file = next(treebank.glob("*-ud-train.conllu"))
    dev_file = next(treebank.glob("*-ud-dev.conllu"))
    t0 = time.perf_counter()
    tokenizer_tagger = udpipe.Trainer.DEFAULT if full else "none"
    model = udpipe.Trainer.train(
        "morphodita_parsito", _load(udpipe, train_file), _load(udpipe, dev_file), tokenizer_tagger, tokenizer_tagger,
        udpipe.Trainer.DEFAULT,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model if isinstance(model, bytes) else model.encode("latin1"))
    print(json.dumps({"treebank": treebank.name, "train_seconds": round(time.perf_counter() - t0, 1)}))


def parse(model_path: Path, test: Path, out: Path, repeats: int) -> None:
    udpipe = _udpipe()
    t0 = time.perf_counter()
    model = udpipe.Model.load(str(model_path))
    if model is None:
        sys.exit(f"{model_path}: not a UDPipe model")
    pipeline = udpipe.Pipeline(model, "conllu", udpipe.Pipeline.NONE, udpipe.Pipeline.DEFAULT, "conllu")
    load_seconds = time.perf_counter() - t0
    text = test.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    words = sum(1 for b in blocks for line in b.splitlines() if line.split("\t", 1)[0].isdigit())
    best, result = float("inf"), ""
    for _ in range(repeats):
        t = time.perf_counter()
        err = udpipe.ProcessingError()
        result = pipeline.process(text, err)
        best = min(best, time.perf_counter() - t)
        if err.occurred():
            sys.exit(f"{test}: {err.message}")
    out.write_text(result, encoding="utf-8")
    print(json.dumps({"sentences": len(blocks), "words": words, "seconds": best, "load_seconds": load_seconds}))


def process(model_path: Path, source: Path, out: Path, input_format: str) -> None:
    udpipe = _udpipe()
    model = udpipe.Model.load(str(model_path))
    if model is None:
        sys.exit(f"{model_path}: not a UDPipe model")
    reader = "tokenize" if input_format == "text" else "conllu"
    pipeline = udpipe.Pipeline(model, reader, udpipe.Pipeline.DEFAULT, udpipe.Pipeline.DEFAULT, "conllu")
    err = udpipe.ProcessingError()
    t0 = time.perf_counter()
    result = pipeline.process(source.read_text(encoding="utf-8"), err)
    if err.occurred():
        sys.exit(f"{source}: {err.message}")
    out.write_text(result, encoding="utf-8")
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 2)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a parser-only model (or --full: the whole pipeline) on a UD treebank")
    t.add_argument("treebank", type=Path)
    t.add_argument("model", type=Path)
    t.add_argument("--full", action="store_true", help="tokenizer, tagger and lemmatizer, parser")
    r = sub.add_parser("process", help="run a full model on CoNLL-U or raw text")
    r.add_argument("model", type=Path)
    r.add_argument("input", type=Path)
    r.add_argument("output", type=Path)
    r.add_argument("--input", dest="input_format", choices=["conllu", "text"], default="conllu")
    p = sub.add_parser("parse", help="parse a CoNLL-U file with a model, timed")
    p.add_argument("model", type=Path)
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.command == "train":
        train(args.treebank, args.model, args.full)
    elif args.command == "process":
        process(args.model, args.input, args.output, args.input_format)
    else:
        parse(args.model, args.input, args.output, args.repeats)


if __name__ == "__main__":
    main()
