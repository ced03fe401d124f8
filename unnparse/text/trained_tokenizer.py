"""A tokenizer and sentence splitter learnt from a treebank, for parsing raw text.

Treebanks disagree on what a token is (UD_English-ParTUT splits ``part-session`` and ``1950s``, UD_Afrikaans-AfriBooms
keeps ``'n`` and ``43(5)`` whole) and on where sentences end, so no fixed rule set fits them all. This segmenter
reads a paragraph character by character (a two-layer character BiLSTM over embeddings of the character and of its
Unicode category) and labels each non-space character: inside a token, the end of a word inside a multiword token
(``Shakespeare|'s``: the words spell out the token), the end of a token, or the end of a token and of a sentence.
Whitespace always ends a token. Multiword tokens whose words do not spell the token (``du`` = ``de le``) are
expanded from a dictionary of the training data's multiword tokens.

It is trained on the text of the training sentences (each sentence's tokens joined as their ``SpaceAfter=No``
say, sentences joined by a space, paragraphs at ``# newpar``), in windows of characters, and stored with the parser
(``tokenizer-<hex>.safetensors`` and the ``tokenizer`` entry of ``config.json``).
"""

from __future__ import annotations

import math
import os
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unnparse.conllu.sentence import Sentence
from unnparse.model_files import (
    CONFIG_FILE,
    FILES_KEY,
    Limit,
    ModelFileError,
    canonical_sha256,
    check_config,
    commit_config,
    load_config,
    load_weights,
    record_legacy_files,
    write_weights,
)
from unnparse.text.multiword import multiword_dictionary, surface_tokens
from unnparse.text.raw_text import SENTENCE_CHAR_LIMIT, stream_paragraphs
from unnparse.training.distributed import DistContext
from unnparse.training.schedules import LinearDecay
from unnparse.training.task import Evaluation, Step, TrainingTask
from unnparse.training.trainer import Trainer, TrainerOptions

__all__ = [
    "INSIDE",
    "TOKENIZER_FILE",
    "SENTENCE_END",
    "TOKEN_END",
    "DEV_CHARS",
    "WORD_END",
    "TrainedTokenizer",
    "dev_sample",
    "labelled_paragraphs",
    "paragraph_texts",
    "rule_scores",
    "train_tokenizer",
]

INSIDE, WORD_END, TOKEN_END, SENTENCE_END = 0, 1, 2, 3
#: A number as texts write it (``2019``, ``1,500``, ``3.14``, ``12:30``): one token in every UD treebank, so never
#: split inside, whatever the model says (a treebank with few numbers teaches it little about them).
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_N_LABELS = 4
#: The tokenizer's weights in a model directory written before manifests (now ``tokenizer-<hex>.safetensors``).
TOKENIZER_FILE = "tokenizer.safetensors"
#: The accepted values of the ``tokenizer`` entry of a model's config.json (checked on load).
CONFIG_LIMITS: dict[str, Limit] = {
    "tokenizer.chars": Limit(list, high=1_000_000),
    "tokenizer.multiword": Limit(dict, high=1_000_000),
    "tokenizer.hidden": Limit(int, 2, 65536),
    "tokenizer.char_dim": Limit(int, 1, 65536),
}
_UNK = 1  # character id 0 pads
_WINDOW = 250  # characters per training window
_INFER_WINDOW = 256  # characters per inference window (context included)
_CONTEXT = 32  # characters of context on either side of an inference window's kept part
_STREAM_LIMIT = 1 << 16  # characters buffered before the complete sentences of a paragraph are emitted
#: Characters of dev text the tokenizer is evaluated on while it trains (see :func:`dev_sample`).
DEV_CHARS = 40_000


def _category(ch: str) -> str:
    return unicodedata.category(ch)


_CATEGORIES = sorted(
    {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}
    | {"Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"}
)


class SegmenterNet(nn.Module):
    """Character and category embeddings -> 2-layer BiLSTM -> one of four labels per character."""

    def __init__(self, n_chars: int, *, char_dim: int = 64, hidden: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        self.chars = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.categories = nn.Embedding(len(_CATEGORIES) + 1, 16)
        self.lstm = nn.LSTM(char_dim + 16, hidden // 2, num_layers=2, bidirectional=True, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, _N_LABELS)

    def forward(self, chars: Tensor, categories: Tensor, lengths: Tensor) -> Tensor:
        """Label scores [B, T, 4] of character ids and category ids [B, T] of texts of ``lengths`` [B] (on the CPU):
        padding does not reach the real characters, so a text's labels do not depend on its batch."""
        x = self.dropout(torch.cat([self.chars(chars), self.categories(categories)], dim=-1))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=chars.shape[1])
        return self.out(self.dropout(h))


def labelled_paragraphs(sentences: Sequence[Sentence]) -> list[tuple[str, list[int]]]:
    """The text of ``sentences`` as paragraphs, each with one label per character (see the module docstring)."""
    paragraphs: list[tuple[str, list[int]]] = []
    chars: list[str] = []
    labels: list[int] = []
    for sentence in sentences:
        if chars and sentence.starts_paragraph:
            paragraphs.append(("".join(chars), labels))
            chars, labels = [], []
        tokens = surface_tokens(sentence)
        for i, (form, words, space) in enumerate(tokens):
            start = len(labels)
            chars.extend(form)
            labels.extend([INSIDE] * len(form))
            if len(words) > 1 and "".join(words).lower() == form.lower():
                at = start
                for word in words[:-1]:
                    at += len(word)
                    labels[at - 1] = WORD_END
            labels[-1] = SENTENCE_END if i == len(tokens) - 1 else TOKEN_END
            if space or i == len(tokens) - 1:
                chars.append(" ")
                labels.append(INSIDE)
    if chars:
        paragraphs.append(("".join(chars), labels))
    return paragraphs


@dataclass
class _Encoded:
    chars: Tensor
    categories: Tensor
    lengths: Tensor  # on the CPU, as packing wants them


class TrainedTokenizer:
    """A trained segmenter with its character vocabulary and multiword dictionary (see the module docstring)."""

    def __init__(self, net: SegmenterNet, chars: Sequence[str], multiword: dict[str, list[str]]) -> None:
        self.net = net
        self.chars = list(chars)
        self.char_ids = {ch: i + 2 for i, ch in enumerate(self.chars)}
        self.category_ids = {name: i + 1 for i, name in enumerate(_CATEGORIES)}
        self.multiword = dict(multiword)
        #: Labels computed ahead by :meth:`prefetch` (paragraph → labels), each used once.
        self._prefetched: dict[str, list[int]] = {}

    # ---- files ---------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """What ``config.json`` stores (the weights go to ``tokenizer-<hex>.safetensors``)."""
        return {
            "chars": self.chars,
            "multiword": self.multiword,
            "hidden": self.net.out.in_features,
            "char_dim": self.net.chars.embedding_dim,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainedTokenizer:
        """A tokenizer with the stored vocabulary and untrained weights (load the weights into ``.net``).

        Raises:
            KeyError, TypeError, ValueError: an incomplete or malformed entry.
        """
        chars = [str(c) for c in config["chars"]]
        multiword = {str(k): [str(w) for w in v] for k, v in dict(config["multiword"]).items()}
        if int(config["hidden"]) % 2:
            raise ValueError(f"hidden must be even (two LSTM directions), not {config['hidden']}")
        net = SegmenterNet(len(chars) + 2, char_dim=int(config["char_dim"]), hidden=int(config["hidden"]))
        return cls(net, chars, multiword)

    def write_weights(self, directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the weights into a model directory (``tokenizer-<hex>.safetensors``, bound to this tokenizer's
        config entry by its hash); returns the entry for ``config.json`` and the file's ``files`` record. The
        tokenizer is part of the model once a config naming both is committed (see :meth:`save`)."""
        entry = self.to_config()
        metadata = {"tokenizer_sha256": canonical_sha256(entry)}
        return entry, write_weights(directory, "tokenizer", self.net.state_dict(), metadata=metadata)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Add this tokenizer to a model directory, replacing its own, atomically as a whole: the weights are written
        first (a new file), then ``config.json`` with the ``tokenizer`` entry and the file's record, then the old
        tokenizer's weights are removed (see :mod:`unnparse.model_files`)."""
        entry, record = self.write_weights(directory)
        config = load_config(directory)
        files = record_legacy_files(directory, config)
        files["tokenizer"] = record
        config["tokenizer"], config[FILES_KEY] = entry, files
        commit_config(directory, config)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], config: dict[str, Any] | None = None) -> TrainedTokenizer:
        """The tokenizer of a model directory; ``config`` is its ``config.json`` when already read.

        Raises:
            ModelFileError: no tokenizer, an out-of-range or incomplete entry, or a missing, corrupt or mismatched
                weights file (one line naming the file).
        """
        cfg_path = Path(directory) / CONFIG_FILE
        config = load_config(directory) if config is None else config
        entry = config.get("tokenizer")
        if not isinstance(entry, dict):
            raise ModelFileError(f"{cfg_path}: the model has no tokenizer entry")
        check_config(config, CONFIG_LIMITS, cfg_path)
        try:
            tokenizer = cls.from_config(entry)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{cfg_path}: incomplete tokenizer entry ({err!r})") from None
        load_weights(directory, tokenizer.net, config, role="tokenizer", bound={"tokenizer": entry})
        tokenizer.net.eval()
        return tokenizer

    # ---- encoding ------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], device: torch.device | None = None) -> _Encoded:
        """Character and category ids [B, T] of texts (padded with 0)."""
        width = max(len(t) for t in texts)
        chars = torch.zeros(len(texts), width, dtype=torch.long)
        cats = torch.zeros(len(texts), width, dtype=torch.long)
        for row, text in enumerate(texts):
            text = "".join(" " if ch.isspace() else ch for ch in text)
            chars[row, : len(text)] = torch.tensor([self.char_ids.get(ch, _UNK) for ch in text], dtype=torch.long)
            cats[row, : len(text)] = torch.tensor(
                [self.category_ids.get(_category(ch), 0) for ch in text], dtype=torch.long
            )
        if device is not None:
            chars, cats = chars.to(device), cats.to(device)
        return _Encoded(chars, cats, torch.tensor([len(t) for t in texts], dtype=torch.long))

    @property
    def device(self) -> torch.device:
        """Where the segmenter's weights are."""
        return self.net.out.weight.device

    # ---- segmentation --------------------------------------------------------------------
    def labels(self, paragraph: str, *, batch_size: int = 64) -> list[int]:
        """The label of each character of ``paragraph`` (windows of characters with context on both sides)."""
        ahead = self._prefetched.pop(paragraph, None)
        if ahead is not None:
            return ahead
        return self.labels_many([paragraph], batch_size=batch_size)[0]

    @torch.no_grad()
    def labels_many(self, paragraphs: Sequence[str], *, batch_size: int = 64) -> list[list[int]]:
        """The labels of several paragraphs, their windows run through the network together (``batch_size`` at a
        time)."""
        self.net.eval()
        step = _INFER_WINDOW - 2 * _CONTEXT
        outs = [[INSIDE] * len(paragraph) for paragraph in paragraphs]
        windows = [(i, start) for i, paragraph in enumerate(paragraphs) for start in range(0, len(paragraph), step)]
        for first in range(0, len(windows), batch_size):
            group = windows[first : first + batch_size]
            texts = [paragraphs[i][max(0, s - _CONTEXT) : s + step + _CONTEXT] for i, s in group]
            enc = self.encode(texts, self.device)
            pred = self.net(enc.chars, enc.categories, enc.lengths).argmax(-1).cpu().tolist()
            for (i, s), row in zip(group, pred, strict=True):
                offset = s - max(0, s - _CONTEXT)
                keep = row[offset : offset + min(step, len(paragraphs[i]) - s)]
                outs[i][s : s + len(keep)] = keep
        return [_numbers_whole(paragraph, out) for paragraph, out in zip(paragraphs, outs, strict=True)]

    def prefetch(self, texts: Sequence[Iterable[str]]) -> None:
        """Label the paragraphs of several texts (each the lines that :meth:`iter_sentences` will read) in shared
        batches, and keep the labels for the next :meth:`iter_sentences` that meets those paragraphs, once each (what
        was kept before is dropped). A paragraph met otherwise is labelled then as usual, so the sentences do not
        depend on what was prefetched; a service uses it to label the texts of many small requests at once."""
        paragraphs: list[str] = []

        def record(paragraph: str, final: bool, first_line: int) -> tuple[list[Sentence], int | None]:
            if paragraph:
                paragraphs.append(paragraph)
            return [], None

        for lines in texts:
            for _ in stream_paragraphs(lines, record, soft_limit=_STREAM_LIMIT):
                pass
        paragraphs = [p for p in dict.fromkeys(paragraphs) if len(p) < _STREAM_LIMIT]  # longer ones are re-read
        self._prefetched = dict(zip(paragraphs, self.labels_many(paragraphs), strict=True))

    def segment(self, paragraph: str) -> list[list[tuple[str, list[str], bool]]]:
        """Sentences of ``paragraph``, each a list of tokens ``(form, words, space after)``."""
        return [tokens for _start, tokens in self._sentences(paragraph)]

    def _sentences(self, paragraph: str) -> list[tuple[int, list[tuple[str, list[str], bool]]]]:
        """``(offset of the first character, tokens)`` of each sentence of ``paragraph``."""
        labels = self.labels(paragraph)
        sentences: list[tuple[int, list[tuple[str, list[str], bool]]]] = []
        tokens: list[tuple[str, list[str], bool]] = []
        form: list[str] = []
        splits: list[int] = []
        start = 0  # where the sentence being read begins

        def end_token(space: bool) -> None:
            if form:
                text = "".join(form)
                bounds = [0, *splits, len(text)]
                words = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
                if len(words) == 1:
                    words = self._expand(text)
                tokens.append((text, words, space))
                form.clear()
                splits.clear()

        def end_sentence() -> None:
            if tokens:
                sentences.append((start, list(tokens)))
                tokens.clear()

        for i, (ch, label) in enumerate(zip(paragraph, labels, strict=True)):
            if ch.isspace():
                end_token(True)
                continue
            if not tokens and not form:
                start = i
            form.append(ch)
            if label == WORD_END:
                splits.append(len(form))
            elif label >= TOKEN_END:
                end_token(i + 1 >= len(paragraph) or paragraph[i + 1].isspace())
                if label == SENTENCE_END:
                    end_sentence()
        end_token(True)
        end_sentence()
        return sentences

    def _expand(self, form: str) -> list[str]:
        words = self.multiword.get(form.lower())
        if not words:
            return [form]
        if form[:1].isupper():  # keep the token's capital on its first word
            words = [words[0][:1].upper() + words[0][1:], *words[1:]]
        return list(words)

    def iter_sentences(self, lines: Iterable[str], *, source: str = "<stdin>") -> Iterator[Sentence]:
        """Stream raw text into unannotated sentences: each paragraph is segmented as a whole, a long one every
        ~64k characters (its unfinished last sentence is then read again with what follows; see
        :func:`~unnparse.text.raw_text.stream_paragraphs`), in time linear in the text. A sentence longer than
        :data:`~unnparse.text.raw_text.SENTENCE_CHAR_LIMIT` characters (about a million) is cut there, so memory
        stays bounded. ``sent_id`` counts from 1; ``Sentence.line`` is the line where the sentence's paragraph (or
        the part of it read again) starts."""
        counter = 0

        def split(paragraph: str, final: bool, first_line: int) -> tuple[list[Sentence], int | None]:
            nonlocal counter
            found = self._sentences(paragraph)
            keep_from = None
            if not final and found and len(paragraph) < SENTENCE_CHAR_LIMIT:  # the last one may go on: read again
                keep_from = found.pop()[0]
            out = []
            for _start, tokens in found:
                counter += 1
                out.append(_sentence(tokens, str(counter), source, first_line))
            return out, keep_from

        return stream_paragraphs(lines, split, soft_limit=_STREAM_LIMIT)


def _numbers_whole(paragraph: str, labels: list[int]) -> list[int]:
    """``labels`` with no token or sentence end inside a number of ``paragraph`` (its last character keeps its
    label)."""
    for match in _NUMBER.finditer(paragraph):
        for i in range(match.start(), match.end() - 1):
            labels[i] = INSIDE
    return labels


def _sentence(tokens: Sequence[tuple[str, list[str], bool]], sent_id: str, source: str, line: int) -> Sentence:
    text = "".join(form + (" " if space else "") for form, _words, space in tokens).strip()
    return Sentence.from_tokens(
        [(form, words if len(words) > 1 else None, space) for form, words, space in tokens],
        sent_id=sent_id,
        text=text,
        source=source,
        line=line,
    )


# ---- training ------------------------------------------------------------------------------------


def _windows(paragraphs: Sequence[tuple[str, list[int]]], rng: random.Random) -> list[tuple[str, list[int]]]:
    """Non-overlapping windows of the training text, starting at a random offset."""
    out = []
    for text, labels in paragraphs:
        start = -rng.randrange(_WINDOW) if len(text) > _WINDOW else 0
        for a in range(start, len(text), _WINDOW):
            a0 = max(a, 0)
            out.append((text[a0 : a + _WINDOW], labels[a0 : a + _WINDOW]))
    return [w for w in out if w[0]]


def _batches(
    paragraphs: Sequence[tuple[str, list[int]]], batch_size: int, rng: random.Random
) -> Iterator[list[tuple[str, list[int]]]]:
    """Batches of training windows, epoch after epoch (windows reshuffled and re-cut each time)."""
    while True:
        windows = _windows(paragraphs, rng)
        rng.shuffle(windows)
        for first in range(0, len(windows), batch_size):
            yield windows[first : first + batch_size]


def dev_sample(sentences: Sequence[Sentence], max_chars: int = DEV_CHARS) -> list[Sentence]:
    """Whole sentences of ``sentences`` with about ``max_chars`` characters of text at most (all of them when their
    text is shorter): eight runs of consecutive sentences spread evenly over the whole, each run at least one
    sentence. The tokenizer is evaluated on it while it trains, so that an evaluation costs a bounded time whatever
    the size of the dev set."""
    sizes = [len(s.surface_text()) + 1 for s in sentences]
    if sum(sizes) <= max_chars:
        return list(sentences)
    runs = min(8, len(sentences))
    per_run = max_chars / runs
    chosen: list[Sentence] = []
    for run in range(runs):
        first, end = run * len(sentences) // runs, (run + 1) * len(sentences) // runs
        size = 0
        for i in range(first, end):
            if i > first and size + sizes[i] > per_run:
                break
            chosen.append(sentences[i])
            size += sizes[i]
    return chosen


class TokenizerTask(TrainingTask):
    """The tokenizer's part of training: windows of the training text (re-cut at a random offset and shuffled every
    epoch), per-character cross-entropy of the segmentation labels, token and sentence F1 on a dev sample."""

    kind = "tokenizer"
    unit = "windows"
    reduction = "mean"
    evaluation_name = "dev"
    log_prefix = "tokenizer: "

    def __init__(
        self,
        tokenizer: TrainedTokenizer,
        paragraphs: Sequence[tuple[str, list[int]]],
        dev: Sequence[Sentence] | None,
        batch_size: int,
        lr: float,
        rng: random.Random,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = tokenizer.net
        self.paragraphs, self.batch_size, self.lr, self.rng = paragraphs, batch_size, lr, rng
        self.dev = list(dev) if dev else None
        self.dev_text = paragraph_texts(self.dev) if self.dev else None

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "lr": self.lr}]

    def signature(self) -> dict[str, Any]:
        return {"chars": len(self.tokenizer.chars), "batch_size": self.batch_size}

    def generators(self) -> list[random.Random]:
        return [self.rng]

    def epoch_batches(self, epoch: int) -> list[tuple[list[tuple[str, list[int]]], float]]:
        windows = _windows(self.paragraphs, self.rng)
        self.rng.shuffle(windows)
        return [(windows[first : first + self.batch_size], 1.0) for first in range(0, len(windows), self.batch_size)]

    def prepare(self, batch: list[tuple[str, list[int]]], weight: float) -> tuple[_Encoded, Tensor]:
        enc = self.tokenizer.encode([w for w, _ in batch], self.tokenizer.device)
        gold = torch.full(enc.chars.shape, -100, dtype=torch.long)
        for row, (text, labels) in enumerate(batch):
            gold[row, : len(labels)] = torch.tensor(
                [lab if not ch.isspace() else -100 for ch, lab in zip(text, labels, strict=True)]
            )
        return enc, gold

    def step(self, prepared: tuple[_Encoded, Tensor], weight: float) -> Step:
        enc, gold = prepared
        scores = self.model(enc.chars, enc.categories, enc.lengths)
        loss = nn.functional.cross_entropy(
            scores.reshape(-1, _N_LABELS), gold.to(scores.device).reshape(-1), ignore_index=-100
        )
        return Step(loss, torch.stack([loss.detach().double(), loss.detach().new_ones((), dtype=torch.float64)]))

    def evaluate(self) -> Evaluation | None:
        if not self.dev or self.dev_text is None:
            return None
        from unnparse.evaluation.text_alignment import segmentation_scores

        predicted = [s for text in self.dev_text for s in self.tokenizer.iter_sentences([text], source="<dev>")]
        scores = {k: v.f1 for k, v in segmentation_scores(self.dev, predicted).items()}
        return Evaluation(scores, ((scores["tokens"] + scores["sentences"]) / 2,))

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        return {"loss": totals[0] / max(totals[1], 1)} if totals else {"loss": 0.0}

    def describe_evaluation(self, point: Mapping[str, Any], best: bool) -> str:
        line = f"tokenizer update {point['updates']}/{point['of']}: loss {point['loss']:.4f}, {point['elapsed']:.0f} s"
        if "dev" in point:
            line += ", dev F1 " + ", ".join(f"{k} {v:.2f}" for k, v in point["dev"].items())
            line += " (best)" if best else ""
        return line


def train_tokenizer(
    train: Sequence[Sentence],
    dev: Sequence[Sentence] | None = None,
    *,
    steps: int = 1000,
    max_epochs: int = 20,
    eval_every: int = 250,
    batch_size: int = 16,
    lr: float = 3e-3,
    hidden: int = 128,
    char_dim: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    max_seconds: float | None = None,
    dev_chars: int = DEV_CHARS,
    log: Callable[[str], None] | None = None,
) -> tuple[TrainedTokenizer, dict[str, float]]:
    """Train a tokenizer on the text of ``train`` for ``steps`` updates, or ``max_epochs`` passes over the text if
    that is fewer (Adam, the rate decayed linearly to zero, gradients clipped at norm 5), with the
    :class:`~unnparse.training.trainer.Trainer`; with ``dev``, evaluate on :func:`dev_sample` of it (``dev_chars``
    characters) every ``eval_every`` updates and after the last, keeping the weights of the best mean of the dev
    token and sentence F1. Returns the tokenizer and the dev F1 scores of the kept weights (empty without ``dev``).

    ``max_seconds`` bounds the whole call (preparing the text included): after each update the updates that still
    fit, with the evaluations, are estimated from the time the previous ones took, and the rate's decay is
    re-planned to end with them; at least one update is made, and ``log`` says when the budget cut the training short.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    paragraphs = labelled_paragraphs(train)
    if not paragraphs:
        raise ValueError("no training text for the tokenizer")
    counts = Counter(ch for text, _ in paragraphs for ch in text)
    chars = sorted(ch for ch, n in counts.items() if n >= 2)
    net = SegmenterNet(len(chars) + 2, char_dim=char_dim, hidden=hidden)
    tokenizer = TrainedTokenizer(net, chars, multiword_dictionary(train, spelt_out=False))
    tokenizer.net.to(device)
    steps = max(1, min(steps, max_epochs * math.ceil(len(_windows(paragraphs, random.Random(seed))) / batch_size)))
    dev = dev_sample(dev, dev_chars) if dev else None
    task = TokenizerTask(tokenizer, paragraphs, dev, batch_size, lr, rng)
    dev_text_chars = sum(len(text) for text in task.dev_text or ())
    schedule = LinearDecay(
        steps, fit_to_budget=True, evaluation_updates=dev_text_chars / (batch_size * _WINDOW) if dev else 0.0
    )
    options = TrainerOptions(
        epochs=2 * max_epochs + 1,  # the windows of an epoch vary a little in number: the schedule decides the end
        max_minutes=None if max_seconds is None else max_seconds / 60,
        budget_spent=time.perf_counter() - started,
        clip=5.0,
        evaluate_each_epoch=False,
        evaluate_every=min(eval_every, steps),
        evaluate_at_end=True,
        restore_best=True,
        progress=False,
    )
    dist = DistContext(device=tokenizer.device)
    result = Trainer(task, options, schedule=schedule, dist=dist, log=log or (lambda _line: None)).fit()
    return tokenizer, dict(result.best)


def rule_scores(gold: Sequence[Sentence], *, max_chars: int = DEV_CHARS) -> dict[str, float]:
    """Token, sentence and word F1 of the rule-based tokenizer (:mod:`unnparse.text.raw_text`) on the text of
    ``gold`` (its :func:`dev_sample` of ``max_chars`` characters, the text :func:`train_tokenizer` scores itself on):
    the baseline a trained tokenizer has to beat."""
    from unnparse.evaluation.text_alignment import segmentation_scores
    from unnparse.text.raw_text import iter_sentences_from_text

    gold = dev_sample(gold, max_chars)
    predicted = [s for text in paragraph_texts(gold) for s in iter_sentences_from_text([text])]
    return {k: v.f1 for k, v in segmentation_scores(gold, predicted).items()}


def paragraph_texts(sentences: Sequence[Sentence]) -> list[str]:
    """The paragraphs of text of ``sentences`` (as :func:`labelled_paragraphs` lays them out)."""
    return [text for text, _labels in labelled_paragraphs(sentences)]
