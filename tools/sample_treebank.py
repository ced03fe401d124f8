"""Generator of UD_English-Sample, a small synthetic English treebank for demos and tests.

The sentences come from a seeded, deterministic phrase-structure grammar that builds the
dependency tree directly, with gold UD annotation (LEMMA, UPOS, HEAD, DEPREL,
``SpaceAfter=No``, multiword tokens for *cannot*, *gonna*, *wanna*; XPOS and FEATS are
``_``).  It covers det, amod, nummod, compound, nmod:poss, nsubj, nsubj:pass, obj, iobj, obl, nmod, case,
advmod, aux, aux:pass, cop, expl, cc, conj (noun phrases, verb phrases and clauses),
mark, advcl, ccomp, xcomp, acl:relcl, punct and root, with a vocabulary of a few hundred
words in which many are ambiguous (*book*, *watch*, *light*, *water*, *that*, *to*,
*her*, *before* ...).  The text is invented by the grammar: nothing comes from an
existing corpus, so the treebank is distributed under the project's MIT license.

Regenerate the committed files with::

    python tools/sample_treebank.py            # writes the resource folder
    python tools/sample_treebank.py --check    # exit 1 if the files differ
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unnparse.io_utils import atomic_write_text

__all__ = [
    "NAME",
    "SEED",
    "SPLITS",
    "generate_sentences",
    "generate_treebank",
    "main",
    "sample_data_dir",
    "sample_treebank_dir",
    "write_treebank",
]

NAME = "UD_English-Sample"
PREFIX = "en_sample"
SEED = 20240611
SPLITS: tuple[tuple[str, int], ...] = (("train", 2000), ("dev", 250), ("test", 250))
MIN_WORDS, MAX_WORDS = 3, 40

README = f"""# {NAME}

A small **synthetic** English treebank in CoNLL-U format (Universal Dependencies v2 style),
shipped with unnparse for demos and tests: {", ".join(f"{n} {s}" for s, n in SPLITS)} sentences.

Every sentence was produced by a seeded, deterministic grammar (no text from any existing
corpus) that builds the gold dependency tree together with the words, so the annotation
(LEMMA, UPOS, HEAD, DEPREL, `SpaceAfter=No`, multiword tokens) is exact with respect
to that grammar. XPOS, FEATS and DEPS are left empty (`_`). It is meant for smoke tests and
demos, not for measuring parser accuracy on real English.

Regenerate (byte-identical) from a checkout of unnparse with:

    python tools/sample_treebank.py

License: MIT, the same as the unnparse project.
"""


def sample_data_dir() -> Path:
    """The data directory holding the sample treebank (use with ``find_treebank(NAME, ...)``)."""
    return Path(__file__).resolve().parents[1] / "unnparse" / "resources" / "sample_treebank"


def sample_treebank_dir() -> Path:
    """The folder of the committed sample treebank files."""
    return sample_data_dir() / NAME


# ======================================================================================
# Vocabulary
# ======================================================================================

_IRREGULAR_PLURALS = {
    "child": "children",
    "man": "men",
    "woman": "women",
    "fish": "fish",
    "sheep": "sheep",
    "mouse": "mice",
}


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


# noun class -> count nouns;  "mass" nouns have no plural
_NOUNS: dict[str, tuple[str, ...]] = {
    "person": (
        "teacher student doctor farmer child man woman girl boy friend neighbor artist driver baker "
        "king queen singer writer pilot nurse cook guide"
    ).split(),
    "animal": "dog cat bird horse fish cow sheep mouse".split(),
    "thing": (
        "book car picture ball bag map key phone computer box bottle table window door plant watch light "
        "lamp coat hat shirt flower tree bike boat train ticket gift chair clock radio cup"
    ).split(),
    "text": "book letter story report poem note message song answer question".split(),
    "food": "apple cake sandwich egg orange".split(),
    "place": (
        "park garden city school river market station library kitchen office village forest mountain "
        "room house street beach shop hospital museum bridge"
    ).split(),
    "event": "meeting party game lesson concert walk trip dinner show visit call dream".split(),
}
_MASS_NOUNS: dict[str, tuple[str, ...]] = {
    "food": ("bread", "soup", "cheese", "tea", "coffee", "water", "rice", "milk"),
    "thing": ("paint", "paper", "music"),
}
_NAMES = "Mary John Anna Peter Sarah David Emma Tom Lucy Maria Omar Ravi".split()
_PLACE_NAMES = "London Paris Berlin Tokyo Lisbon Cairo Lima Oslo".split()
_DAYS = "Monday Tuesday Friday Sunday".split()
_COMPOUND_MODIFIERS = "school kitchen city garden train water book coffee computer music birthday paper".split()
_COMPOUND_HEADS = "bus table door game party shop window bottle cup teacher station book map".split()

_ADJECTIVES = (
    "big small old young new red blue green happy sad tall short quiet loud beautiful kind clever busy "
    "tired hungry cold warm dark bright heavy light strange famous empty full rich poor long"
).split()
_PRED_ADJECTIVES = "happy sad tired hungry busy quiet ready late angry proud cold warm empty full famous".split()
_INTENSIFIERS = "very really quite too".split()
_ADVERBS = "quickly slowly often never always carefully happily quietly sometimes".split()
_POST_ADVERBS = "quickly slowly carefully happily quietly here there today again".split()
_MODALS = ("can", "can", "should", "must", "may", "might", "could", "would")
_NUMBERS = "two three four five six ten".split()

# person, number -> subject / object pronoun
_PRONOUNS = {
    (1, "Sing"): ("I", "me", "my"),
    (2, "Sing"): ("you", "you", "your"),
    (3, "Sing"): ("he", "him", "his"),
    (1, "Plur"): ("we", "us", "our"),
    (3, "Plur"): ("they", "them", "their"),
}
_SHE = ("she", "her", "her")
_POSSESSIVES = "my your his her its our their".split()

# Verbs: lemma -> (past, past participle, frames, object classes).
# Frames: I intransitive, T transitive, D ditransitive, C clausal complement, X to-infinitive.
_VERBS: dict[str, tuple[str | None, str | None, str, tuple[str, ...]]] = {
    "sleep": ("slept", "slept", "I", ()),
    "arrive": (None, None, "I", ()),
    "laugh": (None, None, "I", ()),
    "smile": (None, None, "I", ()),
    "dance": (None, None, "I", ()),
    "swim": ("swam", "swum", "I", ()),
    "wait": (None, None, "I", ()),
    "travel": (None, None, "I", ()),
    "run": ("ran", "run", "I", ()),
    "work": (None, None, "I", ()),
    "dream": (None, None, "I", ()),
    "fish": (None, None, "I", ()),
    "walk": (None, None, "IT", ("animal",)),
    "sing": ("sang", "sung", "IT", ("text",)),
    "play": (None, None, "IT", ("event", "thing")),
    "cook": (None, None, "IT", ("food",)),
    "eat": ("ate", "eaten", "IT", ("food",)),
    "drink": ("drank", "drunk", "T", ("food",)),
    "read": ("read", "read", "IT", ("text",)),
    "write": ("wrote", "written", "ITD", ("text",)),
    "paint": (None, None, "IT", ("thing", "place")),
    "see": ("saw", "seen", "T", ("person", "animal", "thing", "place")),
    "like": (None, None, "TX", ("person", "animal", "thing", "food")),
    "love": (None, None, "TX", ("person", "animal", "thing", "food", "place")),
    "build": ("built", "built", "T", ("thing", "place")),
    "find": ("found", "found", "T", ("thing", "animal", "text")),
    "watch": (None, None, "T", ("person", "animal", "event")),
    "book": (None, None, "T", ("thing", "event", "place")),
    "visit": (None, None, "T", ("person", "place")),
    "help": (None, None, "T", ("person",)),
    "call": (None, None, "T", ("person", "animal")),
    "answer": (None, None, "T", ("text", "person")),
    "open": (None, None, "T", ("thing", "text", "place")),
    "close": (None, None, "T", ("thing", "place")),
    "carry": (None, None, "T", ("thing", "food", "animal")),
    "clean": (None, None, "T", ("thing", "place")),
    "water": (None, None, "T", ("thing", "place")),
    "plant": (None, None, "T", ("thing",)),
    "light": ("lit", "lit", "T", ("thing",)),
    "train": (None, None, "T", ("animal", "person")),
    "park": (None, None, "T", ("thing",)),
    "guide": (None, None, "T", ("person",)),
    "catch": ("caught", "caught", "T", ("thing", "animal")),
    "draw": ("drew", "drawn", "T", ("thing", "place", "animal")),
    "take": ("took", "taken", "T", ("thing", "food", "animal")),
    "fix": (None, None, "T", ("thing",)),
    "buy": ("bought", "bought", "TD", ("thing", "food", "text")),
    "sell": ("sold", "sold", "TD", ("thing", "food")),
    "give": ("gave", "given", "D", ("thing", "food", "text")),
    "send": ("sent", "sent", "D", ("text", "thing")),
    "show": ("showed", "shown", "D", ("thing", "text", "place")),
    "offer": (None, None, "D", ("thing", "food")),
    "tell": ("told", "told", "DC", ("text",)),
    "bring": ("brought", "brought", "D", ("thing", "food", "text")),
    "teach": ("taught", "taught", "D", ("text", "event")),
    "lend": ("lent", "lent", "D", ("thing", "text")),
    "say": ("said", "said", "C", ()),
    "think": ("thought", "thought", "C", ()),
    "know": ("knew", "known", "CT", ("person", "place", "text")),
    "believe": (None, None, "C", ()),
    "hope": (None, None, "CX", ()),
    "feel": ("felt", "felt", "C", ()),
    "notice": (None, None, "CT", ("person", "animal", "thing")),
    "want": (None, None, "TX", ("thing", "food", "text")),
    "try": (None, None, "X", ()),
    "plan": (None, None, "X", ()),
    "decide": (None, None, "X", ()),
    "need": (None, None, "TX", ("thing", "food", "person")),
    "forget": ("forgot", "forgotten", "X", ()),
    "refuse": (None, None, "X", ()),
    "promise": (None, None, "X", ()),
}
_DITRANSITIVE_WITH_TO = ("give", "send", "show", "offer", "bring", "lend", "sell", "write", "teach", "tell")


def _verbs_with(frame: str) -> list[str]:
    return [lemma for lemma, spec in _VERBS.items() if frame in spec[2]]


def _third_singular(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _double_final(verb: str) -> bool:
    return (
        len(verb) >= 3
        and verb[-1] not in "aeiouwxy"
        and verb[-2] in "aeiou"
        and verb[-3] not in "aeiou"
        and verb in ("swim", "run", "plan", "shop")
    )


def _past(verb: str) -> str:
    spec = _VERBS.get(verb)
    if spec and spec[0]:
        return spec[0]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if _double_final(verb):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _participle(verb: str) -> str:
    spec = _VERBS.get(verb)
    if spec and spec[1]:
        return spec[1]
    return _past(verb)


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    if _double_final(verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


# ======================================================================================
# Trees
# ======================================================================================


@dataclass
class _Node:
    form: str
    lemma: str
    upos: str
    deprel: str = "dep"
    left: list[_Node] = field(default_factory=list)
    right: list[_Node] = field(default_factory=list)
    mwt: str | None = None  # surface form of a two-word token starting at this word
    person: int = 3
    number: str = "Sing"


def _word(form: str, lemma: str, upos: str, deprel: str = "dep") -> _Node:
    return _Node(form, lemma, upos, deprel)


def _dep(head: _Node, node: _Node, deprel: str, side: str) -> _Node:
    node.deprel = deprel
    (head.left if side == "left" else head.right).append(node)
    return node


def _punct(form: str) -> _Node:
    return _word(form, form, "PUNCT", "punct")


@dataclass
class _Clause:
    """Settings for one clause."""

    kind: str = "main"  # main, ccomp, advcl, relcl_subj, relcl_obj, xcomp, conj
    depth: int = 0
    question: bool = False


class _Grammar:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # ---- helpers ------------------------------------------------------------------------
    def p(self, prob: float) -> bool:
        return self.rng.random() < prob

    def pick(self, items: Sequence[str]) -> str:
        return items[self.rng.randrange(len(items))]

    def weighted(self, options: Sequence[tuple[str, float]]) -> str:
        total = sum(w for _, w in options)
        r = self.rng.random() * total
        for name, weight in options:
            r -= weight
            if r < 0:
                return name
        return options[-1][0]

    # ---- noun phrases -------------------------------------------------------------------
    def noun_phrase(self, classes: Sequence[str], case: str, depth: int, allow_pron: bool = True) -> _Node:
        """A noun phrase headed by a noun of one of ``classes``; ``case`` is subj or obj."""
        classes = list(classes)
        if allow_pron and "person" in classes and self.p(0.22):
            return self.pronoun(case)
        if "person" in classes and self.p(0.12):
            return _word(self.pick(_NAMES), "", "PROPN")
        if "place" in classes and self.p(0.12):
            return _word(self.pick(_PLACE_NAMES), "", "PROPN")
        cls = self.pick(classes)
        mass = cls in _MASS_NOUNS and self.p(0.3)
        lemma = self.pick(_MASS_NOUNS[cls] if mass else _NOUNS[cls])
        plural = not mass and self.p(0.3)
        head = _word(_plural(lemma) if plural else lemma, lemma, "NOUN")
        head.number = "Plur" if plural else "Sing"
        self.determiner(head, plural, mass)
        if self.p(0.35):
            head.left.append(self.adjective_phrase("amod"))
            if self.p(0.2):
                second = self.adjective_phrase("amod")
                if second.form != head.left[-1].form:
                    head.left.insert(len(head.left) - 1, second)
        if lemma in _COMPOUND_HEADS and self.p(0.3):
            mod = self.pick(_COMPOUND_MODIFIERS)
            head.left.append(_word(mod, mod, "NOUN", "compound"))
        if depth < 2:
            if self.p(0.18):
                self.noun_modifier(head, depth)
            elif self.p(0.13):
                self.relative_clause(head, classes, depth)
        return head

    def pronoun(self, case: str) -> _Node:
        key = self.rng.choice(list(_PRONOUNS))
        person, number = key
        forms = _PRONOUNS[key]
        if key == (3, "Sing") and self.p(0.5):
            forms = _SHE
        form = forms[0] if case == "subj" else forms[1]
        node = _word(form, forms[0], "PRON")
        node.person, node.number = person, number
        return node

    def determiner(self, head: _Node, plural: bool, mass: bool) -> None:
        if mass:
            choice = self.weighted([("the", 4), ("some", 2), ("", 3), ("poss", 1)])
        elif plural:
            choice = self.weighted(
                [
                    ("the", 4),
                    ("", 2.5),
                    ("these", 0.5),
                    ("those", 0.5),
                    ("poss", 1.2),
                    ("num", 1.5),
                    ("some", 0.6),
                    ("many", 0.4),
                ]
            )
        else:
            choice = self.weighted(
                [("the", 4.5), ("a", 2.5), ("this", 0.5), ("that", 0.5), ("every", 0.3), ("poss", 1.5)]
            )
        if choice == "poss":
            form = self.pick(_POSSESSIVES)
            head.left.append(
                _word(
                    form,
                    {"her": "she", "its": "it", "my": "I", "your": "you", "his": "he", "our": "we", "their": "they"}[
                        form
                    ],
                    "PRON",
                    "nmod:poss",
                )
            )
        elif choice == "num":
            if self.p(0.2):
                head.left.append(_word("the", "the", "DET", "det"))
            form = self.pick(_NUMBERS)
            head.left.append(_word(form, form, "NUM", "nummod"))
        elif choice == "many":
            head.left.append(_word("many", "many", "ADJ", "amod"))
        elif choice:
            lemma = {"these": "this", "those": "that"}.get(choice, choice)
            head.left.append(_word(choice, lemma, "DET", "det"))

    def adjective_phrase(self, deprel: str) -> _Node:
        form = self.pick(_ADJECTIVES if deprel == "amod" else _PRED_ADJECTIVES)
        adj = _word(form, form, "ADJ", deprel)
        if self.p(0.12):
            adv = self.pick(_INTENSIFIERS)
            adj.left.append(_word(adv, adv, "ADV", "advmod"))
        return adj

    def noun_modifier(self, head: _Node, depth: int) -> None:
        prep, classes = self.rng.choice(
            [
                ("of", ("place", "person", "thing")),
                ("with", ("thing", "animal")),
                ("from", ("place",)),
                ("near", ("place",)),
                ("in", ("place",)),
                ("on", ("thing",)),
                ("for", ("person", "event")),
                ("about", ("animal", "person", "event")),
            ]
        )
        noun = self.noun_phrase(classes, "obj", depth + 1, allow_pron=False)
        noun.left.insert(0, _word(prep, prep, "ADP", "case"))
        _dep(head, noun, "nmod", "right")

    def relative_clause(self, head: _Node, classes: Sequence[str], depth: int) -> None:
        human = head.upos == "NOUN" and head.lemma in _NOUNS["person"]
        if self.p(0.6):
            form = "who" if human else self.pick(("that", "which"))
            rel = _word(form, form, "PRON")
            rel.number, rel.person = head.number, 3
            verb = self.clause(_Clause("relcl_subj", depth + 1), subject=rel)
        else:
            form = self.pick(("that", "who") if human else ("that", "which"))
            rel = _word(form, form, "PRON")
            verb = self.clause(_Clause("relcl_obj", depth + 1), rel_object=rel)
        _dep(head, verb, "acl:relcl", "right")

    def coordinate(self, first: _Node, make: Callable[[], _Node], count: int = 2) -> _Node:
        """Attach ``count - 1`` conjuncts built by ``make()`` to ``first``."""
        conjuncts = [make() for _ in range(count - 1)]
        for i, conj in enumerate(conjuncts):
            if i == len(conjuncts) - 1:
                cc = self.pick(("and", "or")) if first.upos != "VERB" else self.pick(("and", "and", "but", "or"))
                conj.left.insert(0, _word(cc, cc, "CCONJ", "cc"))
            else:
                conj.left.insert(0, _punct(","))
            _dep(first, conj, "conj", "right")
        return first

    # ---- clauses ------------------------------------------------------------------------
    def clause(
        self,
        spec: _Clause,
        *,
        subject: _Node | None = None,
        rel_object: _Node | None = None,
        frame: str | None = None,
    ) -> _Node:
        """Build a clause and return its head (its deprel is set by the caller)."""
        if frame is None:
            if rel_object is not None:
                frame = "T"
            else:
                options = [("I", 2.0), ("T", 4.0), ("D", 1.0), ("COP", 1.8), ("PASS", 0.6)]
                if spec.depth < 2:
                    options += [("C", 0.9), ("X", 1.1)]
                if spec.kind == "main":
                    options += [("EXPL", 0.3), ("GONNA", 0.25)]
                frame = self.weighted(options)
        subj_classes: tuple[str, ...] = ("person", "person", "animal")
        if frame in ("COP", "PASS"):
            subj_classes = ("person", "animal", "thing", "place")

        # subject ----------------------------------------------------------------------
        subj: _Node | None = None
        if subject is not None:
            subj = subject
        elif spec.kind != "xcomp" and frame != "EXPL":
            subj = self.noun_phrase(subj_classes, "subj", spec.depth)
            if spec.depth < 2 and subj.upos != "PRON" and self.p(0.06):
                self.coordinate(
                    subj,
                    lambda: self.noun_phrase(subj_classes, "subj", 2, allow_pron=False),
                    count=3 if self.p(0.3) else 2,
                )
                subj.number = "Plur"
        person, number = (subj.person, subj.number) if subj is not None else (3, "Sing")

        # tense ------------------------------------------------------------------------
        if spec.kind == "xcomp":
            tense = "inf"
        elif spec.kind.startswith("relcl") or frame == "EXPL":
            tense = self.weighted([("pres", 3), ("past", 4), ("fut", 1)])
        else:
            tense = self.weighted([("pres", 3), ("past", 4), ("fut", 1.2), ("modal", 1), ("prog", 1), ("perf", 0.8)])
        negate = spec.kind != "xcomp" and not spec.question and frame not in ("EXPL", "GONNA") and self.p(0.1)
        if frame == "GONNA":
            tense = "pres"

        # predicate --------------------------------------------------------------------
        auxes: list[_Node] = []
        expletive_subject: _Node | None = None
        if frame == "COP":
            head, auxes = self.copular_predicate(tense, person, number)
        elif frame == "PASS":
            lemma = self.pick(_verbs_with("T"))
            head = _word(_participle(lemma), lemma, "VERB")
            auxes = self.aux_chain(tense, person, number, passive=True)
        elif frame == "EXPL":
            expletive_subject = self.noun_phrase(("animal", "thing", "person"), "obj", spec.depth + 1, False)
            if tense == "fut":
                head = _word("be", "be", "VERB")
                auxes = self.aux_chain(tense, 3, expletive_subject.number)
            else:
                form = self.be_form(tense, 3, expletive_subject.number)
                head = _word(form, "be", "VERB")
        elif frame == "GONNA":
            head = _word("gon", "go", "VERB")
            form = self.be_form("pres", person, number)
            auxes = [_word(form, "be", "AUX", "aux")]
        else:
            lemma = self.pick(_verbs_with(frame))
            head, auxes = self.verb_with_tense(lemma, tense, person, number, spec.question or negate)

        # left dependents: (relative object,) subject, auxiliaries, negation, adverb ------
        left: list[_Node] = []
        if rel_object is not None:
            rel_object.deprel = "obj"
            left.append(rel_object)
        if subj is not None:
            subj.deprel = "nsubj:pass" if frame == "PASS" else "nsubj"
        if frame == "EXPL":
            left.append(_word("there", "there", "PRON", "expl"))
        if spec.question and auxes:
            left.append(auxes.pop(0))
        if subj is not None:
            left.append(subj)
        if negate and auxes:
            auxes.insert(1, self.negation(auxes[0]))
        left.extend(auxes)
        if frame not in ("COP", "EXPL", "GONNA") and not spec.question and self.p(0.08):
            adv = self.pick(_ADVERBS)
            left.append(_word(adv, adv, "ADV", "advmod"))
        if spec.kind == "xcomp":
            left.append(_word("to", "to", "PART", "mark"))
        head.left = left + head.left

        # right dependents -------------------------------------------------------------
        if expletive_subject is not None:
            _dep(head, expletive_subject, "nsubj", "right")
            self.oblique(head, spec.depth, ("place",))
        elif frame == "GONNA":
            self.xcomp(head, spec, gonna=True)
        elif frame == "PASS":
            if self.p(0.5):
                agent = self.noun_phrase(("person", "animal"), "obj", spec.depth + 1)
                agent.left.insert(0, _word("by", "by", "ADP", "case"))
                _dep(head, agent, "obl", "right")
        elif frame in ("T", "D", "C", "X") and rel_object is None:
            self.complements(head, frame, spec)
        if frame != "EXPL" and spec.depth < 3:
            if self.p(0.45):
                self.oblique(head, spec.depth, None)
            if self.p(0.15):
                self.oblique(head, spec.depth, None)
        if frame != "COP" and self.p(0.08):
            adv = self.pick(_POST_ADVERBS)
            _dep(head, _word(adv, adv, "ADV", "advmod"), "advmod", "right")
        if spec.kind == "main" and frame in ("I", "T") and not auxes and not spec.question and self.p(0.1):
            self.coordinate_vp(head, frame, tense, person, number, spec)
        return head

    def verb_with_tense(
        self, lemma: str, tense: str, person: int, number: str, do_support: bool
    ) -> tuple[_Node, list[_Node]]:
        """The main verb in ``tense`` plus its auxiliaries (left to right).

        With ``do_support`` (questions, negation) simple tenses get *do* / *does* / *did*.
        """
        if tense in ("pres", "past") and do_support:
            do = self.do_form(tense, person, number)
            return _word(lemma, lemma, "VERB"), [do]
        if tense == "pres":
            return _word(self.present(lemma, person, number), lemma, "VERB"), []
        if tense == "past":
            return _word(_past(lemma), lemma, "VERB"), []
        if tense == "inf":
            return _word(lemma, lemma, "VERB"), []
        if tense == "prog":
            return _word(_gerund(lemma), lemma, "VERB"), self.aux_chain(tense, person, number)
        if tense == "perf":
            return _word(_participle(lemma), lemma, "VERB"), self.aux_chain(tense, person, number)
        return _word(lemma, lemma, "VERB"), self.aux_chain(tense, person, number)

    def present(self, lemma: str, person: int, number: str) -> str:
        return _third_singular(lemma) if person == 3 and number == "Sing" else lemma

    def be_form(self, tense: str, person: int, number: str) -> str:
        if tense == "past":
            return "was" if number == "Sing" and person != 2 else "were"
        if number == "Sing" and person == 1:
            return "am"
        return "is" if number == "Sing" and person == 3 else "are"

    def do_form(self, tense: str, person: int, number: str) -> _Node:
        if tense == "past":
            return _word("did", "do", "AUX", "aux")
        if person == 3 and number == "Sing":
            return _word("does", "do", "AUX", "aux")
        return _word("do", "do", "AUX", "aux")

    def aux_chain(self, tense: str, person: int, number: str, passive: bool = False) -> list[_Node]:
        """Auxiliaries for ``tense``; with ``passive`` a form of *be* (aux:pass) ends the chain."""
        chain: list[_Node] = []
        if tense == "fut":
            chain.append(_word("will", "will", "AUX", "aux"))
        elif tense == "modal":
            form = self.pick(_MODALS)
            chain.append(_word(form, form, "AUX", "aux"))
        elif tense == "perf":
            if person == 3 and number == "Sing":
                chain.append(_word("has", "have", "AUX", "aux"))
            else:
                chain.append(_word("have", "have", "AUX", "aux"))
        elif tense == "prog" and not passive:
            form = self.be_form(self.pick(("pres", "past")), person, number)
            chain.append(_word(form, "be", "AUX", "aux"))
        if passive:
            if tense in ("fut", "modal", "inf"):
                chain.append(_word("be", "be", "AUX", "aux:pass"))
            elif tense == "perf":
                chain.append(_word("been", "be", "AUX", "aux:pass"))
            else:
                form = self.be_form("past" if tense in ("past", "prog") else "pres", person, number)
                chain.append(_word(form, "be", "AUX", "aux:pass"))
        return chain

    def negation(self, first_aux: _Node) -> _Node:
        if first_aux.upos == "AUX" and first_aux.deprel == "aux" and first_aux.lemma in _MODALS and self.p(0.5):
            first_aux.form = first_aux.lemma = "can"
            first_aux.mwt = "cannot"
            return _word("not", "not", "PART", "advmod")
        if first_aux.lemma == "do" or (first_aux.form in ("is", "are", "was", "were", "has", "have") and self.p(0.4)):
            return _word("n't", "not", "PART", "advmod")
        return _word("not", "not", "PART", "advmod")

    def copular_predicate(self, tense: str, person: int, number: str) -> tuple[_Node, list[_Node]]:
        kind = self.weighted([("adj", 3), ("noun", 1.5), ("place", 1.5)])
        if kind == "adj":
            head = self.adjective_phrase("root")
        elif kind == "noun":
            lemma = self.pick(_NOUNS["person"])
            plural = number == "Plur"
            head = _word(_plural(lemma) if plural else lemma, lemma, "NOUN")
            if plural:
                if self.p(0.3):
                    head.left.append(self.adjective_phrase("amod"))
            else:
                head.left.append(_word("a", "a", "DET", "det"))
                if self.p(0.4):
                    head.left.append(self.adjective_phrase("amod"))
        else:
            prep = self.pick(("in", "at", "near", "behind", "under", "on"))
            head = self.noun_phrase(("place",) if prep != "under" else ("thing",), "obj", 2, allow_pron=False)
            head.left.insert(0, _word(prep, prep, "ADP", "case"))
        if tense in ("fut", "modal"):
            chain = self.aux_chain(tense, person, number)
            chain.append(_word("be", "be", "AUX", "cop"))
        elif tense == "perf":
            chain = self.aux_chain(tense, person, number)
            chain.append(_word("been", "be", "AUX", "cop"))
        else:
            form = self.be_form("past" if tense == "past" else "pres", person, number)
            chain = [_word(form, "be", "AUX", "cop")]
        return head, chain

    def complements(self, head: _Node, frame: str, spec: _Clause) -> None:
        lemma = head.lemma
        classes = _VERBS[lemma][3] or ("thing",)
        depth = spec.depth + 1
        if frame == "T":
            obj = self.noun_phrase(classes, "obj", depth)
            if spec.depth == 0 and self.p(0.06):
                self.coordinate(
                    obj, lambda: self.noun_phrase(classes, "obj", 2, allow_pron=False), count=3 if self.p(0.3) else 2
                )
            _dep(head, obj, "obj", "right")
        elif frame == "D":
            recipient_first = self.p(0.55) or lemma not in _DITRANSITIVE_WITH_TO
            recipient = self.noun_phrase(("person",), "obj", depth)
            thing = self.noun_phrase(classes, "obj", depth)
            if recipient_first:
                _dep(head, recipient, "iobj", "right")
                _dep(head, thing, "obj", "right")
            else:
                _dep(head, thing, "obj", "right")
                recipient.left.insert(0, _word("to", "to", "ADP", "case"))
                _dep(head, recipient, "obl", "right")
        elif frame == "C":
            if lemma == "tell":
                _dep(head, self.noun_phrase(("person",), "obj", depth), "iobj", "right")
            comp = self.clause(_Clause("ccomp", depth))
            if self.p(0.55):
                comp.left.insert(0, _word("that", "that", "SCONJ", "mark"))
            _dep(head, comp, "ccomp", "right")
        elif frame == "X":
            self.xcomp(head, spec)

    def xcomp(self, head: _Node, spec: _Clause, gonna: bool = False) -> None:
        frame = self.weighted([("I", 2), ("T", 3)])
        comp = self.clause(_Clause("xcomp", spec.depth + 1), frame=frame)
        if gonna:
            # "gon na": the infinitive marker "na" must follow "gon" directly
            comp.left = [n for n in comp.left if n.deprel != "advmod"]
            comp.left[-1].form = "na"
            comp.left[-1].lemma = "to"
            head.mwt = "gonna"
        elif head.form == "want" and self.p(0.7):
            head.form, head.mwt = "wan", "wanna"
            comp.left = [n for n in comp.left if n.deprel != "advmod"]
            comp.left[-1].form = "na"
        _dep(head, comp, "xcomp", "right")
        head.right.insert(0, head.right.pop())  # the infinitive comes first

    def oblique(self, head: _Node, depth: int, classes: Sequence[str] | None) -> None:
        if classes is None:
            kind = self.weighted([("place", 4), ("with", 2), ("time", 1.5), ("for", 1), ("event", 1)])
        else:
            kind = "place"
        if kind == "time":
            noun = _word(self.pick(_DAYS), "", "PROPN")
            noun.left.append(_word("on", "on", "ADP", "case"))
        elif kind == "event":
            prep = self.pick(("after", "before", "during"))
            noun = self.noun_phrase(("event",), "obj", depth + 1, allow_pron=False)
            noun.left.insert(0, _word(prep, prep, "ADP", "case"))
        else:
            prep, cls = {
                "place": (self.pick(("in", "at", "near", "to", "from", "behind", "into")), ("place",)),
                "with": ("with", ("person", "thing", "animal")),
                "for": ("for", ("person",)),
            }[kind]
            noun = self.noun_phrase(cls, "obj", depth + 1, allow_pron=kind != "place")
            noun.left.insert(0, _word(prep, prep, "ADP", "case"))
        _dep(head, noun, "obl", "right")

    def coordinate_vp(self, head: _Node, frame: str, tense: str, person: int, number: str, spec: _Clause) -> None:
        lemma = self.pick(_verbs_with(frame))
        second, _ = self.verb_with_tense(lemma, tense, person, number, False)
        if frame == "T":
            self.complements(second, "T", _Clause("conj", spec.depth + 1))
        cc = self.pick(("and", "and", "but", "or"))
        second.left.insert(0, _word(cc, cc, "CCONJ", "cc"))
        _dep(head, second, "conj", "right")

    # ---- sentences ----------------------------------------------------------------------
    def sentence(self) -> _Node:
        kind = self.weighted([("decl", 8.3), ("question", 0.7), ("imperative", 0.5), ("coord", 1.0)])
        if kind == "imperative":
            frame = self.weighted([("T", 3), ("D", 1), ("I", 1)])
            root = self.clause(_Clause("xcomp", 0), frame=frame)
            root.left = [n for n in root.left if n.deprel != "mark"]
            if self.p(0.3):
                root.left.insert(0, _word("please", "please", "INTJ", "discourse"))
            end = "!" if self.p(0.3) else "."
        elif kind == "question":
            frame = self.weighted([("T", 3), ("I", 2), ("COP", 2)])
            spec = _Clause("main", 0, question=True)
            root = self.clause(spec, frame=frame)
            end = "?"
        else:
            root = self.clause(_Clause("main", 0))
            if kind == "coord":
                second = self.clause(_Clause("main", 1))
                cc = self.pick(("and", "but", "or"))
                second.left.insert(0, _word(cc, cc, "CCONJ", "cc"))
                if self.p(0.7):
                    second.left.insert(0, _punct(","))
                _dep(root, second, "conj", "right")
            elif self.p(0.24):
                mark = self.pick(("when", "because", "if", "although", "before", "after", "while"))
                sub = self.clause(_Clause("advcl", 1))
                sub.left.insert(0, _word(mark, mark, "SCONJ", "mark"))
                if self.p(0.5):
                    sub.right.append(_punct(","))
                    _dep(root, sub, "advcl", "left")
                    root.left.insert(0, root.left.pop())
                else:
                    _dep(root, sub, "advcl", "right")
            end = "!" if self.p(0.04) else "."
        root.deprel = "root"
        root.right.append(_punct(end))
        return root


# ======================================================================================
# Linearization and CoNLL-U output
# ======================================================================================


def _flatten(root: _Node) -> tuple[list[_Node], list[int]]:
    """Words in surface order and the (1-based) head of each (0 for the root)."""
    order: list[_Node] = []
    parents: list[_Node | None] = []

    def visit(node: _Node, parent: _Node | None) -> None:
        for dep in node.left:
            visit(dep, node)
        order.append(node)
        parents.append(parent)
        for dep in node.right:
            visit(dep, node)

    visit(root, None)
    index = {id(node): i + 1 for i, node in enumerate(order)}
    heads = [0 if parent is None else index[id(parent)] for parent in parents]
    return order, heads


def _no_space_before(form: str) -> bool:
    return form in (".", ",", "?", "!", "n't")


def _to_conllu(root: _Node, sent_id: str) -> tuple[str, str, int]:
    """CoNLL-U text of one sentence, its surface text and its number of words."""
    words, heads = _flatten(root)
    for i, node in enumerate(words):  # a -> an
        if node.lemma == "a" and node.upos == "DET" and i + 1 < len(words) and words[i + 1].form[0] in "aeiou":
            node.form = "an"
        if not node.lemma:
            node.lemma = node.form
    # surface tokens: (first word index, last word index, form)
    tokens: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        node = words[i]
        if node.mwt:
            tokens.append((i, i + 1, node.mwt))
            i += 2
        else:
            tokens.append((i, i, node.form))
            i += 1
    first_start, first_end, first_form = tokens[0]
    tokens[0] = (first_start, first_end, first_form[0].upper() + first_form[1:])
    words[0].form = words[0].form[0].upper() + words[0].form[1:]
    if any(node.deprel == "dep" for node in words):
        raise AssertionError(f"unlabeled word in {sent_id}: {[n.form for n in words]}")
    text_parts: list[str] = []
    lines = [f"# sent_id = {sent_id}"]
    token_lines: list[str] = []
    for t, (start, end, form) in enumerate(tokens):
        space = t + 1 == len(tokens) or not _no_space_before(tokens[t + 1][2])
        text_parts.append(form + (" " if space and t + 1 < len(tokens) else ""))
        misc = "_" if space or t + 1 == len(tokens) else "SpaceAfter=No"
        if start != end:
            token_lines.append(f"{start + 1}-{end + 1}\t{form}\t_\t_\t_\t_\t_\t_\t_\t{misc}")
            misc = "_"
            rng = range(start, end + 1)
        else:
            rng = range(start, start + 1)
        for w in rng:
            node = words[w]
            token_lines.append(
                f"{w + 1}\t{node.form}\t{node.lemma}\t{node.upos}\t_\t_\t{heads[w]}\t{node.deprel}\t_\t{misc}"
            )
    text = "".join(text_parts)
    lines.append(f"# text = {text}")
    lines.extend(token_lines)
    return "\n".join(lines) + "\n\n", text, len(words)


def generate_sentences(rng: random.Random, count: int, prefix: str, seen: set[str]) -> list[str]:
    """``count`` CoNLL-U sentences (as text) with ids ``{prefix}-1``...; texts in ``seen`` are skipped."""
    grammar = _Grammar(rng)
    out: list[str] = []
    while len(out) < count:
        root = grammar.sentence()
        block, text, n_words = _to_conllu(root, f"{prefix}-{len(out) + 1}")
        if not MIN_WORDS <= n_words <= MAX_WORDS or text in seen:
            continue
        seen.add(text)
        out.append(block)
    return out


def generate_treebank(seed: int = SEED, splits: Sequence[tuple[str, int]] = SPLITS) -> dict[str, str]:
    """File name -> content of the whole treebank (CoNLL-U files and README.md)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    files = {}
    for split, count in splits:
        files[f"{PREFIX}-ud-{split}.conllu"] = "".join(generate_sentences(rng, count, split, seen))
    files["README.md"] = README
    return files


def write_treebank(out_dir: str | Path | None = None, seed: int = SEED) -> list[Path]:
    """Generate the treebank and write it (atomically, file by file) into ``out_dir``."""
    folder = Path(out_dir) if out_dir is not None else sample_treebank_dir()
    written = []
    for name, content in generate_treebank(seed).items():
        atomic_write_text(folder / name, content)
        written.append(folder / name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate (or ``--check``) the sample treebank."""
    parser = argparse.ArgumentParser(prog="python tools/sample_treebank.py", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the package's resource folder)")
    parser.add_argument(
        "--check", action="store_true", help="only compare with the files on disk; exit 1 on difference"
    )
    args = parser.parse_args(argv)
    folder = args.out if args.out is not None else sample_treebank_dir()
    if args.check:
        stale = [
            name
            for name, content in generate_treebank().items()
            if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != content
        ]
        for name in stale:
            print(f"out of date: {folder / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_treebank(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
