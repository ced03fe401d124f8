"""Tiny synthetic UD-style treebanks for parser tests (deterministic, generated in tmp dirs)."""

from __future__ import annotations

import random
from pathlib import Path

DETS = ["the", "a", "this", "every"]
ADJS = ["old", "red", "small", "happy", "quiet"]
NOUNS = ["dog", "cat", "man", "book", "park", "letter", "child", "tree"]
VERBS = ["saw", "likes", "reads", "found", "wants"]
PREPS = ["in", "near", "with"]
#: Lemmas that differ from the form (every other word is its own lemma): regular and irregular verbs.
LEMMAS = {"saw": "see", "likes": "like", "reads": "read", "found": "find", "wants": "want"}


def _np(rng: random.Random, start: int) -> tuple[list[tuple[str, str, int | None, str]], int]:
    """A noun phrase: words as (form, upos, relative head or None for the phrase head, deprel)."""
    words: list[tuple[str, str, int | None, str]] = [(rng.choice(DETS), "DET", None, "det")]
    if rng.random() < 0.5:
        words.append((rng.choice(ADJS), "ADJ", None, "amod"))
    words.append((rng.choice(NOUNS), "NOUN", None, "HEAD"))
    head = start + len(words) - 1
    return [(f, u, (head if r != "HEAD" else None), r) for f, u, _h, r in words], head


def make_sentence(rng: random.Random) -> list[tuple[str, str, int, str]]:
    """[(form, upos, head, deprel)] for one sentence: NP VERB NP (PP) ."""
    out: list[tuple[str, str, int, str]] = []
    subj, subj_head = _np(rng, 1)
    verb_pos = len(subj) + 1
    obj, obj_head = _np(rng, verb_pos + 1)
    for f, u, h, r in subj:
        out.append((f, u, verb_pos if h is None else h, "nsubj" if h is None else r))
    out.append((rng.choice(VERBS), "VERB", 0, "root"))
    for f, u, h, r in obj:
        out.append((f, u, verb_pos if h is None else h, "obj" if h is None else r))
    if rng.random() < 0.6:
        prep_pos = len(out) + 1
        pp, pp_head = _np(rng, prep_pos + 1)
        attach = verb_pos if rng.random() < 0.5 else obj_head
        out.append((rng.choice(PREPS), "ADP", pp_head, "case"))
        for f, u, h, r in pp:
            out.append(
                (f, u, attach if h is None else h, ("obl" if attach == verb_pos else "nmod") if h is None else r)
            )
    out.append((".", "PUNCT", verb_pos, "punct"))
    return out


def conllu_text(n: int, seed: int, *, prefix: str = "s") -> str:
    """``n`` sentences in CoNLL-U."""
    rng = random.Random(seed)
    blocks = []
    for i in range(n):
        words = make_sentence(rng)
        text = " ".join(w[0] for w in words[:-1]) + "."
        lines = [f"# sent_id = {prefix}{i + 1}", f"# text = {text}"]
        for j, (form, upos, head, rel) in enumerate(words, start=1):
            misc = "SpaceAfter=No" if j == len(words) - 1 else "_"
            lemma = LEMMAS.get(form, form)
            lines.append(f"{j}\t{form}\t{lemma}\t{upos}\t_\t_\t{head}\t{rel}\t_\t{misc}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def write_treebank(root: Path, name: str = "UD_Toy-Test", n_train: int = 60, n_dev: int = 15) -> Path:
    """A treebank folder ``root/name`` with train/dev/test files; returns the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy-ud-train.conllu").write_text(conllu_text(n_train, 1, prefix="train"), encoding="utf-8")
    (folder / "toy-ud-dev.conllu").write_text(conllu_text(n_dev, 2, prefix="dev"), encoding="utf-8")
    (folder / "toy-ud-test.conllu").write_text(conllu_text(n_dev, 3, prefix="test"), encoding="utf-8")
    return folder
