"""Dependency parsing: data, models, training and evaluation.

The entry point for Python users is :class:`Parser`::

    from unnparse.parser import Parser

    parser = Parser.load("models/UD_English-Sample")
    for sentence in parser.parse(["The cat sat on the mat."]):
        print(sentence.to_conllu())

Several parsers trained on the same treebank combine into one (:func:`combine_parsers`, loaded by
:meth:`Parser.load` as a :class:`ParserEnsemble`).
"""

from unnparse.parser.conllu_data import CoNLLUError, Sentence, read_conllu, write_conllu
from unnparse.parser.ensemble import ParserEnsemble, combine_parsers
from unnparse.parser.metrics import AttachmentScores, score_sentences
from unnparse.parser.parser import ParsedSentence, Parser

__all__ = [
    "AttachmentScores",
    "CoNLLUError",
    "ParsedSentence",
    "Parser",
    "ParserEnsemble",
    "Sentence",
    "combine_parsers",
    "read_conllu",
    "score_sentences",
    "write_conllu",
]
