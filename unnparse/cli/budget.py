"""How ``unnparse train --max-minutes`` splits its time budget between the parser and the tokenizer trained after it.

The parser trains for at most ``1 - TOKENIZER_SHARE`` of the budget; the tokenizer then has whatever is left of the
whole, at least its share when the parser used all of its own, more when early stopping or ``--epochs`` ended the
parser sooner. When less than ``MIN_TOKENIZER_SECONDS`` is left (the parser's last epoch or evaluation overran), the
tokenizer is skipped and raw text is split by the rules
(:func:`unnparse.text.tokenizer_choice.train_and_choose_tokenizer`).
"""

from __future__ import annotations

import time

from unnparse.text.tokenizer_choice import MIN_TOKENIZER_SECONDS

__all__ = ["MIN_TOKENIZER_SECONDS", "TOKENIZER_SHARE", "parser_minutes", "seconds_left"]

#: The part of ``--max-minutes`` kept for the tokenizer when one is trained after the parser.
TOKENIZER_SHARE = 0.15


def parser_minutes(max_minutes: float | None, tokenizer_steps: int) -> float | None:
    """The parser's share of ``max_minutes`` (all of it when no tokenizer is trained; ``None``: no budget)."""
    if max_minutes is None or not tokenizer_steps:
        return max_minutes
    return max_minutes * (1.0 - TOKENIZER_SHARE)


def seconds_left(max_minutes: float | None, started: float, now: float | None = None) -> float | None:
    """Seconds of ``max_minutes`` left at ``now`` (default: :func:`time.monotonic`) for a budget that began at
    ``started`` (a :func:`time.monotonic` reading); ``None`` without a budget, never negative."""
    if max_minutes is None:
        return None
    now = time.monotonic() if now is None else now
    return max(0.0, max_minutes * 60.0 - (now - started))
