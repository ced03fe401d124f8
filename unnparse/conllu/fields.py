"""The CoNLL-U columns one by one: each cell parsed into the value that the ``conllu`` package's
:class:`~conllu.models.Token` holds, and written back; a FEATS / MISC / DEPS value that would not survive a parse
and re-serialization unchanged (duplicate keys, ``Key=`` with an empty value, ...) is kept as its raw string.
Shared by the reader and the sentence model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from conllu.models import Metadata, Token
from conllu.parser import parse_comment_line, parse_id_value, parse_int_value, parse_paired_list_value

__all__ = [
    "FIELDS",
    "SURROGATES",
    "blank_token",
    "deps_to_str",
    "dict_to_str",
    "field_to_str",
    "id_to_str",
    "is_plain_number",
    "is_word",
    "metadata_from_comments",
    "parse_deps_field",
    "parse_dict_field",
    "parse_id",
    "parse_int",
    "token_get",
    "token_space_after",
    "token_to_line",
]

#: The ten CoNLL-U columns, as named by the ``conllu`` package.
FIELDS: tuple[str, ...] = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
#: Lone surrogates (undecodable bytes let through by ``surrogateescape``): never valid in a CoNLL-U file.
SURROGATES = re.compile("[\ud800-\udfff]")

_dict_get = dict.get
_MISSING = object()


def id_to_str(value: Any) -> str:
    if value is None:
        return "_"
    if isinstance(value, tuple):
        return "".join(str(part) for part in value)
    return str(value)


def dict_to_str(value: dict[str, Any]) -> str:
    if not value:
        return "_"
    parts = []
    for key, val in value.items():
        if val is None:
            parts.append(f"{key}=_")
        elif val == "":
            parts.append(str(key))
        else:
            parts.append(f"{key}={val}")
    return "|".join(parts)


def deps_to_str(value: list[tuple[str, Any]]) -> str:
    return "|".join(f"{id_to_str(head)}:{rel}" for rel, head in value)


def field_to_str(value: Any) -> str:
    if value.__class__ is str:  # most cells: the fast paths first
        return value
    if value.__class__ is int:  # ID and HEAD of a word
        return str(value)
    if value is None:
        return "_"
    if isinstance(value, dict):
        return dict_to_str(value)
    if isinstance(value, tuple):
        return id_to_str(value)
    if isinstance(value, list):
        return deps_to_str(value)
    return str(value)


def token_get(token: Token, key: str) -> Any:
    """``token.get(key)`` without ``conllu``'s per-call alias lookup, unless the key is missing (``upostag`` …)."""
    value = _dict_get(token, key, _MISSING)
    return token.get(key) if value is _MISSING else value


def token_to_line(token: Token) -> str:
    return "\t".join([field_to_str(token_get(token, name)) for name in FIELDS])


def parse_dict_field(value: str) -> dict[str, str | None] | str | None:
    """Parse FEATS / MISC like ``conllu`` does, but never lose information."""
    if value == "_":
        return None
    parsed: dict[str, str | None] = {}
    for part in value.split("|"):
        key, sep, val = part.partition("=")
        parsed[key] = (None if val == "_" else val) if sep else ""
    if dict_to_str(parsed) != value:  # duplicate keys, "Key=", empty parts: keep verbatim
        return value
    return parsed


def is_plain_number(value: str) -> bool:
    """``0`` or ASCII digits without a leading zero: what ``conllu`` reads as a plain integer ID or HEAD."""
    return value.isascii() and value.isdigit() and (value[0] != "0" or value == "0")


def parse_id(value: str) -> Any:
    """``conllu.parser.parse_id_value`` with a fast path for the common case, a word's integer ID."""
    return int(value) if is_plain_number(value) else parse_id_value(value)


def parse_int(value: str) -> int | None:
    """``conllu.parser.parse_int_value`` with a fast path for a non-negative HEAD."""
    return int(value) if is_plain_number(value) else parse_int_value(value)


def parse_deps_field(value: str) -> Any:
    if value == "_":  # the common case, without the pattern match
        return None
    parsed = parse_paired_list_value(value)
    if isinstance(parsed, list) and deps_to_str(parsed) != value:
        return value
    return parsed


def metadata_from_comments(comments: Sequence[str]) -> Metadata:
    metadata = Metadata()
    for comment in comments:
        for key, value in parse_comment_line(comment):
            metadata[key] = value
    return metadata


def is_word(token: Token) -> bool:
    return _dict_get(token, "id").__class__ is int


def blank_token(tid: Any, form: str, misc: dict[str, str] | None) -> Token:
    """A token line with only ID, FORM and MISC: ``_`` in every other column."""
    return Token(
        id=tid, form=form, lemma="_", upos="_", xpos=None, feats=None, head=None, deprel="_", deps=None, misc=misc
    )


def token_space_after(token: Token) -> bool:
    misc = token_get(token, "misc")
    return not (isinstance(misc, dict) and misc.get("SpaceAfter") == "No")
