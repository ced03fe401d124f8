"""Whether a parser keeps the tokenizer trained for it: :func:`train_and_choose_tokenizer` trains one on a treebank's
text and adds it to the model directory unless the rules of :mod:`unnparse.text.raw_text` segment the dev text better
(or too little time is left to train one). It says what it decided and why (:class:`TokenizerDecision`); raw text is
split by the rules whenever a model has no tokenizer."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from unnparse.conllu.sentence import Sentence

__all__ = [
    "KEEP_MARGIN",
    "MIN_TOKENIZER_SECONDS",
    "NUMBER_PROBE",
    "TokenizerDecision",
    "compare_on_dev",
    "train_and_choose_tokenizer",
]

#: Fewer seconds than this left for the tokenizer: it is not trained.
MIN_TOKENIZER_SECONDS = 5.0
#: Numbers as texts write them, each a token of its own in every UD treebank: a trained tokenizer must keep as many
#: of them whole as the rules do.
NUMBER_PROBE = ("2019", "1,500", "3.14", "1,000,000", "42", "7", "0.5", "365", "10.000", "2.5")
#: How much better (mean of the token and sentence F1 on dev, in points) the trained tokenizer must be to replace
#: the rules: less is within what another seed or another dev sample changes.
KEEP_MARGIN = 0.5

#: ``skipped``: not trained (too little time); ``unchecked``: kept without a dev set to check it on; ``kept``: it
#: segments the dev text better than the rules by :data:`KEEP_MARGIN` and gets as many of its numbers,
#: abbreviations and punctuation tokens right; ``dropped``: it does not.
Outcome = Literal["skipped", "unchecked", "kept", "dropped"]


def _summary(f1: dict[str, float]) -> str:
    return f"tokens {f1['tokens']:.2f}, sentences {f1['sentences']:.2f}, words {f1['words']:.2f}"


@dataclass(frozen=True)
class TokenizerDecision:
    """What :func:`train_and_choose_tokenizer` decided (``outcome``), the dev F1 of the trained tokenizer
    (``scores``) and of the rules (``rules``) it compared (empty when not compared), and the time it was given."""

    outcome: Outcome
    model_dir: Path
    scores: dict[str, float] = field(default_factory=dict)
    rules: dict[str, float] = field(default_factory=dict)
    max_seconds: float | None = None
    #: why it was dropped: a kind of token (``digits`` ...) it gets wrong more often than the rules, or ``margin``
    worse_on: str | None = None

    @property
    def saved(self) -> bool:
        """The tokenizer was added to the model directory."""
        return self.outcome in ("kept", "unchecked")

    @property
    def message(self) -> str:
        """One line that says what was decided and why."""
        if self.outcome == "skipped":
            return f"only {self.max_seconds or 0.0:.0f} s of --max-minutes left: raw text will be split by the rules"
        if self.outcome == "unchecked":
            return f"tokenizer saved to {self.model_dir} (no dev set to check it on)"
        if self.outcome == "dropped" and self.worse_on not in (None, "margin"):
            return (
                f"on dev the trained tokenizer ({_summary(self.scores)}) splits tokens with {self.worse_on} worse "
                f"than the rules ({_summary(self.rules)}); raw text will be split by the rules"
            )
        if self.outcome == "dropped":
            return (
                f"on dev the trained tokenizer ({_summary(self.scores)}) is not better than the rules "
                f"({_summary(self.rules)}) by {KEEP_MARGIN} F1; raw text will be split by the rules"
            )
        return f"tokenizer saved to {self.model_dir}: dev F1 {_summary(self.scores)} (rules: {_summary(self.rules)})"


def train_and_choose_tokenizer(
    model_dir: str | os.PathLike[str],
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    *,
    steps: int,
    seed: int = 1,
    device: torch.device | str = "cpu",
    max_seconds: float | None = None,
    log: Callable[[str], None] | None = None,
) -> TokenizerDecision:
    """Train a tokenizer on the text of ``train`` for at most ``steps`` updates and ``max_seconds`` (see
    :func:`~unnparse.text.trained_tokenizer.train_tokenizer`) and save it in ``model_dir``, unless the rules segment
    the text of ``dev`` better (the sum of token and sentence F1); without ``dev`` it is kept unchecked. Not trained
    when less than :data:`MIN_TOKENIZER_SECONDS` are left. ``log`` is told when the training starts and how it goes.
    """
    from unnparse.text import trained_tokenizer

    directory = Path(model_dir)
    if max_seconds is not None and max_seconds < MIN_TOKENIZER_SECONDS:
        return TokenizerDecision("skipped", directory, max_seconds=max_seconds)
    if log is not None:
        budget = "" if max_seconds is None else f", at most {max_seconds:.0f} s"
        log(f"training the tokenizer and sentence splitter (at most {steps} updates{budget})")
    tokenizer, scores = trained_tokenizer.train_tokenizer(
        train, dev or None, steps=steps, seed=seed, device=device, max_seconds=max_seconds, log=log
    )
    if not scores:
        tokenizer.save(directory)
        return TokenizerDecision("unchecked", directory, max_seconds=max_seconds)
    comparison = compare_on_dev(tokenizer, dev)
    scores, rules = comparison["trained"]["f1"], comparison["rules"]["f1"]
    worse = next(
        (
            kind.replace("abbreviations", "abbreviation periods")
            for kind, (right, total) in comparison["trained"]["kinds"].items()
            if right < comparison["rules"]["kinds"][kind][0] - max(1, 0.01 * total)
        ),
        None,
    )
    if worse is None and comparison["trained"]["numbers"] < comparison["rules"]["numbers"]:
        worse = "numbers"  # treebanks with few numbers teach nothing about them: the rules keep them whole
    gain = (scores["tokens"] + scores["sentences"]) / 2 - (rules["tokens"] + rules["sentences"]) / 2
    if worse is None and gain < KEEP_MARGIN:
        worse = "margin"
    if worse is not None:
        return TokenizerDecision("dropped", directory, scores, rules, max_seconds, worse_on=worse)
    tokenizer.save(directory)
    return TokenizerDecision("kept", directory, scores, rules, max_seconds)


def compare_on_dev(tokenizer: object, dev: Sequence[Sentence]) -> dict[str, dict[str, dict]]:
    """The trained ``tokenizer`` and the rules on the dev sample (:func:`~unnparse.text.trained_tokenizer.dev_sample`)
    of ``dev``: for each (``trained``, ``rules``), the F1 of tokens, sentences and words (``f1``) and, by kind of
    token (digits, abbreviations, punctuation), how many of the gold tokens it gets exactly and of how many
    (``kinds``), and how many of the numbers of :data:`NUMBER_PROBE` it keeps whole (``numbers``): a treebank
    with few numbers teaches a trained tokenizer nothing about them, and its dev text cannot show it."""
    from unnparse.evaluation.text_alignment import TextAlignment
    from unnparse.text import trained_tokenizer
    from unnparse.text.raw_text import iter_sentences_from_text

    gold = trained_tokenizer.dev_sample(dev)
    texts = trained_tokenizer.paragraph_texts(gold)
    segmented = {
        "trained": [s for text in texts for s in tokenizer.iter_sentences([text], source="<dev>")],  # type: ignore[attr-defined]
        "rules": [s for text in texts for s in iter_sentences_from_text([text])],
    }
    out: dict[str, dict[str, dict]] = {}
    for name, predicted in segmented.items():
        alignment = TextAlignment(gold, predicted, parsed=False)
        out[name] = {
            "f1": {k: v.f1 for k, v in alignment.segmentation().items()},
            "kinds": alignment.tokens_by_kind(),
        }
    probe = " ".join(NUMBER_PROBE)
    kept = {
        "trained": [s for s in tokenizer.iter_sentences([probe], source="<numbers>")],  # type: ignore[attr-defined]
        "rules": list(iter_sentences_from_text([probe])),
    }
    for name, sentences in kept.items():
        tokens = {token.form for sentence in sentences for token in sentence.surface_tokens()}
        out[name]["numbers"] = sum(number in tokens for number in NUMBER_PROBE)  # type: ignore[assignment]
    return out
