"""The names of what ``unnparse parse`` reads and writes and how it splits raw text, without importing torch: the
command lines and the service take the same choices."""

from __future__ import annotations

from enum import Enum

__all__ = ["InputFormat", "OutputFormat", "TokenizerChoice"]


class InputFormat(str, Enum):
    """What an input holds: raw text, one tokenized sentence per line, or CoNLL-U."""

    text = "text"
    tokenized = "tokenized"
    conllu = "conllu"


class OutputFormat(str, Enum):
    """What ``unnparse parse --output-format`` writes (see :data:`unnparse.parser.output_formats.OUTPUT_FORMATS`)."""

    conllu = "conllu"
    json = "json"
    tree = "tree"
    svg = "svg"
    html = "html"


class TokenizerChoice(str, Enum):
    """Which tokenizer splits raw text: the model's own when it has one (auto), the model's, the rules."""

    auto = "auto"
    model = "model"
    rules = "rules"
