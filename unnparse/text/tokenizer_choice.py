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

__all__ = ["MIN_TOKENIZER_SECONDS", "TokenizerDecision", "train_and_choose_tokenizer"]

#: Fewer seconds than this left for the tokenizer: it is not trained.
MIN_TOKENIZER_SECONDS = 5.0

#: ``skipped``: not trained (too little time); ``unchecked``: kept without a dev set to check it on; ``kept``: it
#: segments the dev text at least as well as the rules; ``dropped``: the rules do better.
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
        if self.outcome == "dropped":
            return (
                f"on dev the rules segment better ({_summary(self.rules)}) than the trained tokenizer "
                f"({_summary(self.scores)}); raw text will be split by the rules"
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
    rules = trained_tokenizer.rule_scores(dev)
    if (rules["tokens"] + rules["sentences"]) > (scores["tokens"] + scores["sentences"]):
        return TokenizerDecision("dropped", directory, scores, rules, max_seconds)
    tokenizer.save(directory)
    return TokenizerDecision("kept", directory, scores, rules, max_seconds)
