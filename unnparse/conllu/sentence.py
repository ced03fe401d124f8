"""The sentence model: a CoNLL-U sentence that keeps *all* of its lines.

Comments, multiword-token ranges (``2-3``), empty nodes (``8.1``) and all ten columns are kept, so that an unmodified
sentence is written back byte for byte. Field values are parsed with the ``conllu`` package's parsers into a
:class:`conllu.TokenList`; FEATS / MISC / DEPS values that would not survive a parse and re-serialization unchanged
(duplicate keys, ``Key=`` with an empty value, ...) are kept as raw strings instead of dictionaries.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from conllu.models import Metadata, Token, TokenList

from unnparse.conllu.fields import (
    FIELDS,
    blank_token,
    dict_to_str,
    is_word,
    metadata_from_comments,
    parse_dict_field,
    token_get,
    token_space_after,
    token_to_line,
)

__all__ = ["FIELDS", "TAG_COLUMNS", "PathOrStream", "Sentence", "SurfaceToken"]

_dict_get = dict.get

#: The word-level annotation a parser can learn to predict (auxiliary tagging tasks; LEMMA through edit scripts).
TAG_COLUMNS: tuple[str, ...] = ("upos", "xpos", "feats", "lemma")

#: What the readers and writers accept: a path or an open text/binary stream.
PathOrStream = str | os.PathLike | IO[str] | IO[bytes]


def _check_tag_column(name: str) -> None:
    if name not in TAG_COLUMNS:
        raise ValueError(f"not a tag column: {name!r} (one of {', '.join(TAG_COLUMNS)})")


@dataclass(frozen=True)
class SurfaceToken:
    """A token as it stands in the text (see :meth:`Sentence.surface_tokens`).

    Attributes:
        form: its FORM (a multiword token's, not its words').
        words: the FORM of each of its syntactic words (``(form,)`` for a word of its own).
        first_word: index of its first syntactic word among the sentence's words.
        multiword: whether it is a multiword-token range line.
        space_after: False where MISC says ``SpaceAfter=No``.
        line: its line in the source.
    """

    form: str
    words: tuple[str, ...]
    first_word: int
    multiword: bool
    space_after: bool
    line: int


def _copy_token(token: Token) -> Token:
    return Token(
        {
            key: dict(val) if isinstance(val, dict) else list(val) if isinstance(val, list) else val
            for key, val in token.items()
        }
    )


# --------------------------------------------------------------------------------------
# Sentence
# --------------------------------------------------------------------------------------


@dataclass
class Sentence:
    """One CoNLL-U sentence.

    Attributes:
        tokens: every token line (words, multiword-token ranges, empty nodes) as a
            :class:`conllu.TokenList`; ``tokens.metadata`` holds the parsed comments.
        source: name of the file (or stream) the sentence came from.
        line: 1-based line number where the sentence starts in ``source``.
        comments: the comment lines verbatim (without newline).  They are written back
            as they are as long as ``tokens.metadata`` still matches them; when the
            metadata was changed, comments are regenerated from it as ``# key = value``.

    Treat sentences as values: derive modified copies with :meth:`with_predictions`
    (or :meth:`copy`) rather than mutating a sentence that other code also holds.
    """

    tokens: TokenList
    source: str = "<memory>"
    line: int = 1
    comments: list[str] = field(default_factory=list)

    # ---- views -------------------------------------------------------------------------
    @property
    def word_tokens(self) -> list[Token]:
        """The syntactic words (integer IDs), in order."""
        return [tok for tok in self.tokens if is_word(tok)]

    @property
    def words(self) -> list[str]:
        """FORM of each syntactic word, in order."""
        return [tok["form"] for tok in self.tokens if is_word(tok)]

    @property
    def heads(self) -> list[int] | None:
        """HEAD of each syntactic word, or ``None`` when any HEAD is ``_``."""
        heads = [tok.get("head") for tok in self.tokens if is_word(tok)]
        if any(head is None for head in heads):
            return None
        return heads  # type: ignore[return-value]

    @property
    def deprels(self) -> list[str] | None:
        """DEPREL of each syntactic word, or ``None`` when any DEPREL is ``_``."""
        rels = [tok.get("deprel") for tok in self.tokens if is_word(tok)]
        if any(rel in (None, "_") for rel in rels):
            return None
        return rels  # type: ignore[return-value]

    @property
    def upos(self) -> list[str]:
        """UPOS of each syntactic word (``"_"`` where unannotated)."""
        return self.column("upos")

    def column(self, name: str) -> list[str]:
        """The ``upos``, ``xpos``, ``feats`` or ``lemma`` column of each syntactic word as text (``"_"`` where
        unannotated)."""
        _check_tag_column(name)
        values = []
        for tok in self.tokens:
            if is_word(tok):
                value = tok.get(name)
                values.append(dict_to_str(value) if isinstance(value, dict) else str(value or "_"))
        return values

    @property
    def sent_id(self) -> str | None:
        """The ``# sent_id`` value, if any."""
        value = self.tokens.metadata.get("sent_id")
        return None if value is None else str(value)

    @property
    def text(self) -> str | None:
        """The ``# text`` value, if any."""
        value = self.tokens.metadata.get("text")
        return None if value is None else str(value)

    def surface_tokens(self) -> list[SurfaceToken]:
        """The tokens as they stand in the text: each multiword token with its words, each other word on its own;
        empty nodes have no surface form and are left out."""
        out: list[SurfaceToken] = []
        first_line = self.line + len(self.comments)
        multiword: tuple[Token, int, int, int] | None = None  # range token, last word id, first word, line
        words: list[str] = []
        word = 0  # index of the next syntactic word
        for offset, tok in enumerate(self.tokens):
            tid = _dict_get(tok, "id")
            if isinstance(tid, tuple):
                if tid[1] == "-":
                    multiword, words = (tok, tid[2], word, first_line + offset), []
                continue
            if multiword is not None and tid <= multiword[1]:
                words.append(str(tok["form"]))
                word += 1
                if tid == multiword[1]:
                    span, _last, first, line = multiword
                    space = token_space_after(span)
                    out.append(SurfaceToken(str(span["form"]), tuple(words), first, True, space, line))
                    multiword = None
                continue
            form = str(tok["form"])
            out.append(SurfaceToken(form, (form,), word, False, token_space_after(tok), first_line + offset))
            word += 1
        return out

    def surface_text(self) -> str:
        """The sentence's text rebuilt from its surface tokens (multiword tokens, not their words), separated by a
        space unless MISC says ``SpaceAfter=No``."""
        return "".join(t.form + (" " if t.space_after else "") for t in self.surface_tokens()).rstrip()

    @property
    def starts_paragraph(self) -> bool:
        """Whether a ``# newpar`` or ``# newdoc`` comment opens the sentence."""
        return any(c.startswith(("# newpar", "# newdoc")) for c in self.comments)

    def __len__(self) -> int:
        """Number of syntactic words."""
        return sum(1 for tok in self.tokens if is_word(tok))

    # ---- derived sentences --------------------------------------------------------------
    def copy(self) -> Sentence:
        """A deep enough copy: tokens, their FEATS/MISC/DEPS containers and metadata."""
        tokens = TokenList(
            [_copy_token(tok) for tok in self.tokens],
            Metadata(self.tokens.metadata),
            default_fields=self.tokens.default_fields,
        )
        return Sentence(tokens, source=self.source, line=self.line, comments=list(self.comments))

    def with_predictions(
        self, heads: Sequence[int], deprels: Sequence[str], *, tags: Mapping[str, Sequence[str]] | None = None
    ) -> Sentence:
        """Copy of this sentence whose words' HEAD and DEPREL are replaced.

        ``tags`` (predicted UPOS, XPOS, FEATS or LEMMA, by column name) fill their column only where it is empty
        (``_``): annotation that the input has is never overwritten. Everything else (comments, multiword tokens, empty
        nodes, DEPS, MISC, ...) is kept.

        Raises:
            ValueError: wrong number of heads/deprels, a head outside ``0..len(self)``, or
                an empty / whitespace-containing deprel.
        """
        n_words = len(self)
        tags = dict(tags or {})
        if len(heads) != n_words or len(deprels) != n_words or any(len(v) != n_words for v in tags.values()):
            raise ValueError(
                f"sentence {self.sent_id or '?'} ({self.source}:{self.line}) has {n_words} words, "
                f"got {len(heads)} heads and {len(deprels)} deprels"
            )
        for name in tags:
            _check_tag_column(name)
        new = self.copy()
        words = new.word_tokens
        for i, (tok, head, rel) in enumerate(zip(words, heads, deprels, strict=True)):
            head = int(head)
            if not 0 <= head <= n_words:
                raise ValueError(f"head {head} out of range 0..{n_words} for word {tok['id']}")
            if not rel or any(ch.isspace() for ch in rel):
                raise ValueError(f"invalid deprel {rel!r} for word {tok['id']}")
            tok["head"] = head
            tok["deprel"] = str(rel)
            for name, values in tags.items():
                if token_get(tok, name) in (None, "_", ""):
                    tag = str(values[i])
                    tok[name] = parse_dict_field(tag) if name == "feats" else tag
        return new

    def without_tags(self, columns: Iterable[str]) -> Sentence:
        """Copy of this sentence with the ``upos``, ``xpos``, ``feats`` or ``lemma`` columns of its words emptied
        (``_``), so that a parser fills them with its own predictions."""
        columns = list(columns)
        for name in columns:
            _check_tag_column(name)
        new = self.copy()
        for tok in new.word_tokens:
            for name in columns:
                tok[name] = "_" if name == "upos" else None
        return new

    @classmethod
    def from_tokens(
        cls,
        tokens: Sequence[tuple[str, Sequence[str] | None, bool]],
        *,
        sent_id: str | None = None,
        text: str | None = None,
        source: str = "<memory>",
        line: int = 1,
    ) -> Sentence:
        """Build an unannotated sentence from surface tokens ``(form, words, space after)``: a token with
        ``words`` (two or more) becomes a multiword-token line followed by its words; ``SpaceAfter=No`` goes on the
        token's line."""
        forms: list[str] = []
        spaces: list[bool] = []
        ranges: list[tuple[int, int, str, bool]] = []  # first word index, number of words, token form, space after
        for form, words, space in tokens:
            if words is not None and len(words) > 1:
                ranges.append((len(forms), len(words), form, space))
                forms.extend(words)
                spaces.extend([True] * len(words))
            else:
                forms.append(form)
                spaces.append(space)
        sentence = cls.from_words(forms, space_after=spaces, sent_id=sent_id, text=text, source=source, line=line)
        if ranges:  # one pass (inserting each range line into the list would be quadratic in the tokens)
            lines: list[Token] = []
            done = 0
            for first, count, form, space in ranges:
                if not form or any(ch in form for ch in "\t\n\r"):
                    raise ValueError(f"invalid token form {form!r}")
                lines.extend(sentence.tokens[done:first])
                misc = None if space else {"SpaceAfter": "No"}
                lines.append(blank_token((first + 1, "-", first + count), form, misc))
                done = first
            lines.extend(sentence.tokens[done:])
            sentence.tokens[:] = lines
        return sentence

    @classmethod
    def from_words(
        cls,
        words: Sequence[str],
        *,
        space_after: Sequence[bool] | None = None,
        sent_id: str | None = None,
        text: str | None = None,
        source: str = "<memory>",
        line: int = 1,
    ) -> Sentence:
        """Build an unannotated sentence (ID and FORM, ``_`` elsewhere).

        ``space_after[i] == False`` adds ``SpaceAfter=No`` to MISC of word ``i``; ``sent_id``
        and ``text`` become ``# sent_id`` / ``# text`` comments.
        """
        if not words:
            raise ValueError("a sentence needs at least one word")
        if space_after is not None and len(space_after) != len(words):
            raise ValueError("space_after must have one entry per word")
        tokens = []
        for i, form in enumerate(words):
            if not form or "\t" in form or "\n" in form or "\r" in form:
                raise ValueError(f"invalid word form {form!r}")
            misc = {"SpaceAfter": "No"} if space_after is not None and not space_after[i] else None
            tokens.append(blank_token(i + 1, form, misc))
        comments = []
        if sent_id is not None:
            comments.append(f"# sent_id = {sent_id}")
        if text is not None:
            comments.append(f"# text = {text}")
        for comment in comments:
            if "\n" in comment or "\r" in comment:
                raise ValueError(f"comment must be a single line: {comment!r}")
        token_list = TokenList(tokens, metadata_from_comments(comments), default_fields=FIELDS)
        return cls(token_list, source=source, line=line, comments=comments)

    # ---- serialization ------------------------------------------------------------------
    def comment_lines(self) -> list[str]:
        """The comment lines that :meth:`to_conllu` writes."""
        if self.tokens.metadata == metadata_from_comments(self.comments):
            return list(self.comments)
        return [
            f"# {key} = {value}" if value not in (None, "") else f"# {key}"
            for key, value in self.tokens.metadata.items()
        ]

    def to_conllu(self) -> str:
        """The sentence in CoNLL-U: its lines, each ending in ``\\n``, then a blank line."""
        lines = self.comment_lines()
        lines.extend(token_to_line(tok) for tok in self.tokens)
        return "\n".join(lines) + "\n\n"


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
