"""CoNLL-U: the sentence model (:class:`Sentence`), the one reader and validator (:func:`iter_conllu`,
:func:`read_conllu`) and the writer (:func:`write_conllu`). Errors name the file and the 1-based line.
"""

from unnparse.conllu.errors import CoNLLUError, MultipleRootsWarning, NoSentencesError
from unnparse.conllu.reader import iter_conllu, read_conllu
from unnparse.conllu.sentence import FIELDS, TAG_COLUMNS, PathOrStream, Sentence, SurfaceToken
from unnparse.conllu.writer import write_conllu

__all__ = [
    "FIELDS",
    "TAG_COLUMNS",
    "CoNLLUError",
    "MultipleRootsWarning",
    "NoSentencesError",
    "PathOrStream",
    "Sentence",
    "SurfaceToken",
    "iter_conllu",
    "read_conllu",
    "write_conllu",
]
