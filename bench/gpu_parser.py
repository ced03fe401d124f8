"""The parser with a BERT-base-sized encoder: training and parse speed for K = 1, 2, 3, where a step's time goes,
and SuPar with the same encoder beside it, measured in the same run (meant for a GPU; runs anywhere).

The encoder is BERT-base built from its configuration (12 layers, hidden 768, 12 heads, feed-forward 3072, 512
positions) with random weights: speed does not depend on the weights, so nothing is downloaded. Its tokenizer is
``--tokenizer DIR`` (any fast WordPiece tokenizer directory, e.g. the MiniLM model directory's) or, without it, a
WordPiece vocabulary of ``--vocab`` entries learnt from the training file. For each K:

- training words/s: forward, loss, backward, clipping and the AdamW step (bfloat16 autocast on CUDA, as
  ``unnparse train``) over the first ``--batches`` training batches of ``--batch-tokens`` padded tokens, after one
  warm-up pass; the best of ``--passes`` passes;
- where a training step's time goes, each part timed alone on the same batches with the device synchronized: the
  encoder (forward and backward), the K matrix-tree computations of Y (forward and backward), the rest of the UNN
  (H and M updates, arc scores, relation classifier, loss; the whole forward and backward minus the two), and the
  optimizer (clipping and the AdamW step);
- parse sentences/s and words/s: ``Parser.predict`` over the test file, reading and writing CoNLL-U (model loaded,
  after a warm-up, best of 3), and where a parse's time goes: batching, encoder, UNN, decoding (maximum spanning
  tree and labels).

With ``--supar`` (SuPar 1.1.4 importable, e.g. on ``PYTHONPATH``), SuPar's biaffine dependency parser with the same
encoder directory (SuPar's defaults for a transformer encoder: a scalar mix of the last 4 layers, mean pooling of
subwords, MLPs of 500 and 100) is timed the same way: its own training loop over about the same number of words, and
``predict`` over the test file (MST decoding). Writes the ``gpu-parser`` section of BENCHMARKS.md (``--section`` to
change it) and, with ``--json``, the raw results.

    python bench/gpu_parser.py --device cuda --tokenizer .gpu/tokenizer --supar          # the GPU benchmark
    .venv/bin/python bench/gpu_parser.py --device cpu --tiny --batches 4 --no-write      # checks the script
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402
from bench.parse_speed import time_unnparse  # noqa: E402
from unnparse.conllu import Sentence, read_conllu  # noqa: E402
from unnparse.devices import synchronize  # noqa: E402
from unnparse.parser.batching import inference_batches, token_budget_batches  # noqa: E402
from unnparse.parser.features import Batch  # noqa: E402
from unnparse.parser.parser import Parser, default_config  # noqa: E402
from unnparse.runtime import autocast, resolve_device, resolve_precision  # noqa: E402
from unnparse.structures import arc_marginals, max_spanning_tree  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


# ----------------------------------------------------------------------------- the encoder
def build_random_encoder(out: Path, train: Path, *, tokenizer: Path | None, vocab: int, tiny: bool) -> dict:
    """Write a BERT model directory with random weights; returns its size facts."""
    from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

    if tokenizer is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer, use_fast=True)
    else:
        from tokenizers import BertWordPieceTokenizer

        wp = BertWordPieceTokenizer(lowercase=False)
        texts = (" ".join(s.words) for s in read_conllu(train))
        wp.train_from_iterator(texts, vocab_size=vocab, show_progress=False)
        tok = PreTrainedTokenizerFast(
            tokenizer_object=wp._tokenizer,
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            pad_token="[PAD]",
            mask_token="[MASK]",
            model_max_length=512,
        )
    sizes = TINY if tiny else BERT_BASE
    config = BertConfig(vocab_size=len(tok), max_position_embeddings=512, **sizes)
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return {"parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tok), **sizes}


# ----------------------------------------------------------------------------- timing
def seconds(fn: Callable[[], object], device: torch.device, passes: int) -> float:
    """Best of ``passes`` timings of ``fn`` (after one warm-up call), the device synchronized around each."""
    fn()
    best = float("inf")
    for _ in range(passes):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- unnparse
def unnparse_train_parts(parser: Parser, batches: Sequence[Batch], passes: int) -> dict[str, float]:
    """Seconds over all ``batches`` of a whole training step and of its parts (see the module docstring)."""
    model, device = parser.model.train(), parser.device
    dtype = resolve_precision("auto", device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-7, betas=(0.9, 0.9))  # the network barely changes
    k = model.iterations

    def step(with_optimizer: bool) -> None:
        for batch in batches:
            with autocast(device, dtype):
                out = model(batch)
                loss = model.loss(out, batch)[0]
            loss.backward()
            if with_optimizer:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def encoder() -> None:
        for batch in batches:
            with autocast(device, dtype):
                x = model.encode(batch)
            (x.float() * weights[id(batch)]).sum().backward()
            optimizer.zero_grad(set_to_none=True)

    scores = {id(b): torch.randn(b.lengths.numel(), b.max_words + 1, b.max_words + 1, device=device) for b in batches}
    weights = {
        id(b): torch.randn(b.lengths.numel(), b.max_words + 1, model.encoder.output_dim, device=device) for b in batches
    }

    def trees() -> None:  # K matrix-tree computations of Y, forward and backward
        for batch in batches:
            z = scores[id(batch)].requires_grad_()
            for _ in range(k):
                log_z, marginals = arc_marginals(z, batch.lengths, single_root=True)
                (log_z.sum() + (marginals * z.detach()).sum()).backward()

    full = seconds(lambda: step(True), device, passes)
    forward_backward = seconds(lambda: step(False), device, passes)
    enc = seconds(encoder, device, passes)
    tree = seconds(trees, device, passes)
    return {
        "step": full,
        "encoder": enc,
        "trees": tree,
        "unn_rest": max(0.0, forward_backward - enc - tree),
        "optimizer": max(0.0, full - forward_backward),
    }


def unnparse_parse_parts(parser: Parser, sentences: Sequence[Sentence], batch_tokens: int, passes: int) -> dict:
    """Seconds to parse ``sentences`` in memory, and its parts: batching, encoder, UNN, decoding."""
    model, device = parser.model.eval(), parser.device
    dtype = resolve_precision("auto", device)
    idx = inference_batches([len(s) for s in sentences], batch_tokens)
    feats = parser.featurizer

    def one_batch(b: list[int]) -> Batch:
        return feats.batch([sentences[i] for i in b], b, gold=False).to_device(device)

    def batching() -> list[Batch]:
        return [one_batch(b) for b in idx]

    batches = batching()

    @torch.no_grad()
    def whole() -> None:
        for b in idx:
            batch = one_batch(b)
            with autocast(device, dtype):
                out = model(batch, marginals=False)
            heads, rels = model.decode(out, batch)
            heads.cpu(), rels.cpu()

    @torch.no_grad()
    def encoder() -> None:
        for batch in batches:
            with autocast(device, dtype):
                model.encode(batch)

    @torch.no_grad()
    def forward() -> None:
        for batch in batches:
            with autocast(device, dtype):
                model(batch, marginals=False)

    with torch.no_grad(), autocast(device, dtype):
        outs = [model(batch, marginals=False) for batch in batches]

    @torch.no_grad()
    def decoding() -> None:
        for batch, out in zip(batches, outs, strict=True):
            heads = max_spanning_tree(out.scores.float(), batch.lengths, single_root=True)
            model.relation_logits(out, heads).argmax(-1).cpu()

    total = seconds(whole, device, passes)
    enc, fwd = seconds(encoder, device, passes), seconds(forward, device, passes)
    return {
        "parse": total,
        "batching": seconds(batching, device, passes),
        "encoder": enc,
        "unn": max(0.0, fwd - enc),
        "decoding": seconds(decoding, device, passes),
    }


def measure_unnparse(args, encoder_dir: Path, train: list[Sentence], test_file: Path, k: int) -> dict:
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    config = default_config(encoder=str(encoder_dir), unn_iter=k, **({"hidden": args.hidden} if args.hidden else {}))
    parser = Parser.build(config, train)
    parser.model.to(device)
    idx = token_budget_batches([len(s) for s in train], args.batch_tokens, shuffle=True, seed=1)[: args.batches]
    batches = [parser.featurizer.batch([train[i] for i in b], b, gold=True).to_device(device) for b in idx]
    words = sum(int(b.lengths.sum()) for b in batches)
    parts = unnparse_train_parts(parser, batches, args.passes)
    test = read_conllu(test_file)
    parse = unnparse_parse_parts(parser, test, args.parse_batch_tokens, args.passes)
    with tempfile.TemporaryDirectory() as tmp:
        parser.precision = "auto"
        out = Path(tmp) / "parsed.conllu"
        end_to_end = time_unnparse(parser, test_file, out, repeats=args.passes, batch_tokens=args.parse_batch_tokens)
    test_words = sum(len(s) for s in test)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "system": "unnparse",
        "k": k,
        "train_words": words,
        "train_words_per_s": words / parts["step"],
        "train_parts": parts,
        "parse_sentences_per_s": len(test) / end_to_end,
        "parse_words_per_s": test_words / end_to_end,
        "parse_parts": parse,
        "peak_gpu_mib": peak,
    }


# ----------------------------------------------------------------------------- SuPar
def measure_supar(args, encoder_dir: Path, train_file: Path, test_file: Path, words_budget: int) -> dict:
    """SuPar 1.1.4's biaffine dependency parser on the same encoder: training words/s and parse sentences/s."""
    from supar import BiaffineDependencyParser  # type: ignore[import-not-found]
    from supar.utils import Dataset  # type: ignore[import-not-found]

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        parser = BiaffineDependencyParser.build(
            str(Path(tmp) / "model"),
            build=True,
            encoder="bert",
            bert=str(encoder_dir),
            n_bert_layers=4,
            mix_dropout=0.0,
            bert_pooling="mean",
            encoder_dropout=0.1,
            n_arc_mlp=500,
            n_rel_mlp=100,
            mlp_dropout=0.33,
            feat=None,
            train=str(train_file),
            fix_len=20,
            device=str(device),
            partial=False,
            punct=True,
            tree=True,
            proj=False,
            clip=5.0,
            update_steps=1,
        )
        parser.args.device = str(device)
        parser.model.to(device)
        parser.optimizer = torch.optim.AdamW(parser.model.parameters(), lr=1e-7)
        parser.scheduler = torch.optim.lr_scheduler.LambdaLR(parser.optimizer, lambda _: 1.0)
        data = Dataset(parser.transform, str(train_file))
        data.build(args.batch_tokens, 32, shuffle=True)
        loader = _first_batches(data.loader, words_budget)
        words = sum(int(batch[0].ne(parser.args.pad_index).any(-1).sum() - batch[0].shape[0]) for batch in loader)
        use_amp = device.type == "cuda"

        def train_pass() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                parser._train(loader)

        step = seconds(train_pass, device, args.passes)
        out = Path(tmp) / "parsed.conllu"
        test = read_conllu(test_file)

        def parse() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                parser.predict(
                    str(test_file),
                    pred=str(out),
                    batch_size=args.parse_batch_tokens,
                    tree=True,
                    proj=False,
                    prob=False,
                    verbose=False,
                )

        parse_s = seconds(parse, device, args.passes)
    return {
        "system": "SuPar 1.1.4 biaffine",
        "k": None,
        "train_words": words,
        "train_words_per_s": words / step,
        "parse_sentences_per_s": len(test) / parse_s,
        "parse_words_per_s": sum(len(s) for s in test) / parse_s,
    }


def _first_batches(loader, words_budget: int) -> list:
    """The loader's first batches holding about ``words_budget`` words, moved once (as SuPar's loader yields them)."""
    out, words = [], 0
    for batch in loader:
        out.append(batch)
        words += int(batch[0].ne(0).any(-1).sum())
        if words >= words_budget:
            break
    return out


# ----------------------------------------------------------------------------- report
def report(results: list[dict], facts: dict, args) -> str:
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows, shares = [], []
    for r in results:
        k = "–" if r["k"] is None else r["k"]
        peak = "–" if r.get("peak_gpu_mib") is None else f"{r['peak_gpu_mib']:,.0f}"
        rows.append(
            f"| {r['system']} | {k} | {r['train_words_per_s']:,.0f} | {r['parse_sentences_per_s']:,.0f} | "
            f"{r['parse_words_per_s']:,.0f} | {peak} |"
        )
        if "train_parts" in r:
            t, p = r["train_parts"], r["parse_parts"]
            layers = (t["unn_rest"] + t["trees"]) / t["step"]
            shares.append(
                f"| {r['k']} | {_pct(t['encoder'], t['step'])} | {_pct(t['unn_rest'], t['step'])} | "
                f"{_pct(t['trees'], t['step'])} | {_pct(t['optimizer'], t['step'])} | **{100 * layers:.0f}%** | "
                f"{_pct(p['batching'], p['parse'])} | {_pct(p['encoder'], p['parse'])} | "
                f"{_pct(p['unn'], p['parse'])} | {_pct(p['decoding'], p['parse'])} |"
            )
    return (
        f"{measured_on(name)}. Encoder: BERT with random weights, {facts['num_hidden_layers']} layers, hidden "
        f"{facts['hidden_size']}, {facts['parameters'] / 1e6:.0f}M parameters, WordPiece vocabulary of "
        f"{facts['vocab']:,}; training data {args.train}, test data {args.test}; {args.batches} training batches of "
        f"{args.batch_tokens} padded tokens, parsing in batches of {args.parse_batch_tokens}; bfloat16 autocast on "
        "CUDA (the UNN and the trees in float32), float32 on the CPU; best of "
        f"{args.passes} passes after a warm-up.\n\nCommand: `{command_line()}`\n\n"
        "| system | K | train words/s | parse sent/s | parse words/s | peak GPU MiB |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nWhere the time goes (each part timed alone on the same batches, the device synchronized): training "
        "step = encoder forward and backward + UNN (H and M updates, arc scores, relation classifier, loss) + K "
        "matrix-tree computations of Y + optimizer; parse = batching + encoder + UNN + decoding. Goal: UNN and tree "
        "layers below 25% of a K = 3 training step.\n\n"
        "| K | step: encoder | UNN | trees | optimizer | UNN + trees | parse: batching | encoder | UNN | decoding |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(shares) + "\n"
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tb = SHARED / "UD_English-ParTUT"
    ap.add_argument("--train", type=Path, default=next(iter(sorted(tb.glob("*-ud-train.conllu"))), None))
    ap.add_argument("--test", type=Path, default=next(iter(sorted(tb.glob("*-ud-test.conllu"))), None))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--tokenizer", type=Path, help="a fast tokenizer directory (default: WordPiece learnt on --train)")
    ap.add_argument("--vocab", type=int, default=30000, help="size of the learnt WordPiece vocabulary")
    ap.add_argument("--hidden", type=int, help="size of H and M (default: the parser's)")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-tokens", type=int, default=5000)
    ap.add_argument("--parse-batch-tokens", type=int, default=10000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="a 2-layer encoder: checks the script quickly on a CPU")
    ap.add_argument("--supar", action="store_true", help="also time SuPar 1.1.4 (must be importable)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--section", default="gpu-parser")
    ap.add_argument("--no-write", action="store_true", help="print the report, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    if args.train is None or args.test is None or not args.train.is_file() or not args.test.is_file():
        sys.exit("give --train and --test CoNLL-U files (default: UD_English-ParTUT in ../shared/ud)")
    train = read_conllu(args.train)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = Path(tmp) / "encoder"
        facts = build_random_encoder(
            encoder_dir, args.train, tokenizer=args.tokenizer, vocab=args.vocab, tiny=args.tiny
        )
        print(f"encoder: {facts}", flush=True)
        for k in args.k:
            results.append(measure_unnparse(args, encoder_dir, train, args.test, k))
            print(json.dumps(results[-1]), flush=True)
        if args.supar:
            words = results[0]["train_words"] if results else 50_000
            results.append(measure_supar(args, encoder_dir, args.train, args.test, words))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"encoder": facts, "results": results}, indent=1) + "\n", encoding="utf-8")
    body = report(results, facts, args)
    print(body)
    if not args.no_write:
        title = "Parser with a BERT-base-sized encoder: speed and where the time goes"
        write_section(args.section, title, body)


if __name__ == "__main__":
    main()
