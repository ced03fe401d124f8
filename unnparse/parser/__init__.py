r"""Dependency parsing: data, models, training and evaluation.

The entry point for Python users is :func:`load`, which gives a :class:`Parser` (or a :class:`ParserEnsemble`:
several parsers trained on the same treebank combined into one by :func:`combine_parsers`); both are
:class:`Predictor`\ s and parse alike::

    from unnparse.parser import load

    parser = load("models/UD_English-Sample")
    for sentence in parser.parse(["The cat sat on the mat."]):
        print(sentence.to_conllu())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unnparse.conllu.errors import CoNLLUError
    from unnparse.conllu.reader import read_conllu
    from unnparse.conllu.sentence import Sentence
    from unnparse.conllu.writer import write_conllu
    from unnparse.evaluation.attachment import AttachmentScores, score_sentences
    from unnparse.parser.ensemble import ParserEnsemble, combine_parsers
    from unnparse.parser.loading import load
    from unnparse.parser.parser import Parser
    from unnparse.parser.predictor import ParsedSentence, Predictor

#: Where each public name lives: imported on first use, so that ``import unnparse.parser.config`` (the command
#: lines' defaults) does not load torch.
_HOMES = {
    "CoNLLUError": "unnparse.conllu.errors",
    "read_conllu": "unnparse.conllu.reader",
    "Sentence": "unnparse.conllu.sentence",
    "write_conllu": "unnparse.conllu.writer",
    "AttachmentScores": "unnparse.evaluation.attachment",
    "score_sentences": "unnparse.evaluation.attachment",
    "ParserEnsemble": "unnparse.parser.ensemble",
    "combine_parsers": "unnparse.parser.ensemble",
    "load": "unnparse.parser.loading",
    "Parser": "unnparse.parser.parser",
    "ParsedSentence": "unnparse.parser.predictor",
    "Predictor": "unnparse.parser.predictor",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'unnparse.parser' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "AttachmentScores",
    "CoNLLUError",
    "ParsedSentence",
    "Parser",
    "ParserEnsemble",
    "Predictor",
    "Sentence",
    "combine_parsers",
    "load",
    "read_conllu",
    "score_sentences",
    "write_conllu",
]
