"""Lemmas as edit scripts: what turns a word's form into its lemma, as a short string a classifier can predict.

A script has a casing rule and one rewrite of the (re-cased) form: strip ``cut_prefix`` characters and put
``add_prefix`` in their place, strip ``cut_suffix`` characters and put ``add_suffix`` in theirs, keeping the longest
stretch that the form and the lemma share. Scripts generalize over words: ``walked → walk`` and ``jumped → jump``
share ``cut 2 from the end``; ``Houses → house`` lowers the case first. A lemma that shares nothing with its form
(``went → go``) is stored whole. The encoding is ``CASE|CUT_PREFIX|ADD_PREFIX|CUT_SUFFIX|ADD_SUFFIX``, or
``=LEMMA`` for a whole lemma; a ``|`` or ``\\`` inside the added strings is escaped with a backslash.

>>> edit_script("walked", "walk")
'keep|0||2|'
>>> apply_script("keep|0||2|", "jumped")
'jump'
>>> apply_script(edit_script("Houses", "house"), "Cats")
'cat'
>>> edit_script("went", "go")
'=go'
"""

from __future__ import annotations

import functools

__all__ = ["CASES", "apply_script", "edit_script"]

#: Casing rules, tried in this order: the first under which form and lemma share the most wins.
CASES = ("keep", "lower", "title", "upper")
#: Scripts shorter than this many shared characters store the whole lemma instead (a rewrite would not generalize).
_MIN_SHARED = 1


def _cased(form: str, case: str) -> str:
    if case == "lower":
        return form.lower()
    if case == "title":
        return form[:1].upper() + form[1:].lower()
    if case == "upper":
        return form.upper()
    return form


def _longest_common_substring(a: str, b: str) -> tuple[int, int, int]:
    """(start in ``a``, start in ``b``, length) of the longest common substring (the leftmost in ``a`` on ties)."""
    best = (0, 0, 0)
    if not a or not b:
        return best
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            if ai == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best[2]:
                    best = (i - current[j], j - current[j], current[j])
        previous = current
    return best


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


@functools.lru_cache(maxsize=1 << 16)  # a model has a few thousand scripts: parse each once
def _split(script: str) -> tuple[str, ...]:
    """The ``|``-separated fields of a script, ``\\|`` and ``\\\\`` read back."""
    fields, current, i = [], [], 0
    while i < len(script):
        ch = script[i]
        if ch == "\\" and i + 1 < len(script):
            current.append(script[i + 1])
            i += 2
            continue
        if ch == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    return tuple(fields)


def edit_script(form: str, lemma: str) -> str:
    """The script that turns ``form`` into ``lemma`` (see the module docstring)."""
    best: tuple[int, str, tuple[int, int, int]] | None = None
    for case in CASES:
        cased = _cased(form, case)
        start_f, start_l, length = _longest_common_substring(cased, lemma)
        if best is None or length > best[0]:
            best = (length, case, (start_f, start_l, length))
        if length == len(lemma) == len(cased):
            break
    assert best is not None
    length, case, (start_f, start_l, _) = best
    if length < _MIN_SHARED:
        return "=" + lemma
    cased = _cased(form, case)
    cut_prefix, add_prefix = start_f, lemma[:start_l]
    cut_suffix, add_suffix = len(cased) - start_f - length, lemma[start_l + length :]
    return f"{case}|{cut_prefix}|{_escape(add_prefix)}|{cut_suffix}|{_escape(add_suffix)}"


def apply_script(script: str, form: str) -> str | None:
    """The lemma that ``script`` makes of ``form``; None when it does not apply (it cuts more than the form has,
    or it is not a script)."""
    if script.startswith("="):
        return script[1:] or None
    parts = _split(script)
    if len(parts) != 5 or parts[0] not in CASES:
        return None
    case, cut_prefix, add_prefix, cut_suffix, add_suffix = parts
    try:
        before, after = int(cut_prefix), int(cut_suffix)
    except ValueError:
        return None
    cased = _cased(form, case)
    if before + after > len(cased) or (before + after == len(cased) and not (add_prefix or add_suffix)):
        return None
    return add_prefix + cased[before : len(cased) - after] + add_suffix
