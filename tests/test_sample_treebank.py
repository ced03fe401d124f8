"""Tests for the synthetic sample treebank and its generator."""

from __future__ import annotations

import collections
import statistics
import warnings
from pathlib import Path

import pytest

from tools.sample_treebank import (
    NAME,
    SPLITS,
    generate_treebank,
    main,
    sample_data_dir,
    sample_treebank_dir,
)
from unnparse.conllu import Sentence, read_conllu
from unnparse.parser.treebank import find_treebank

UD_UPOS = set("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())
REQUIRED_DEPRELS = set(
    "det amod nsubj obj iobj obl case nmod advmod aux cop conj cc mark advcl ccomp acl:relcl compound nummod "
    "xcomp punct root nmod:poss nsubj:pass aux:pass expl".split()
)


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate_treebank()


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Sentence]]:
    tb = find_treebank(NAME, sample_data_dir())
    assert tb.dev is not None and tb.test is not None and len(tb.train) == 1
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. MultipleRootsWarning
        for split, path in (("train", tb.train[0]), ("dev", tb.dev), ("test", tb.test)):
            out[split] = read_conllu(path)
    return out


def _surface_text(sentence: Sentence) -> str:
    """Reconstruct the text from the surface tokens (multiword tokens replace their words)."""
    parts = []
    skip_until = 0
    for tok in sentence.tokens:
        tid = tok["id"]
        if isinstance(tid, tuple):
            skip_until = tid[2]
        elif tid <= skip_until:
            continue
        misc = tok["misc"] or {}
        parts.append(tok["form"] + ("" if misc.get("SpaceAfter") == "No" else " "))
    return "".join(parts).rstrip()


def test_committed_files_match_the_generator(generated: dict[str, str]) -> None:
    folder = sample_treebank_dir()
    assert sorted(p.name for p in folder.iterdir()) == sorted(generated)
    for name, content in generated.items():
        assert (folder / name).read_text(encoding="utf-8") == content, f"{name} is stale: run the generator"
    assert main(["--check"]) == 0


def test_generator_is_deterministic_and_seeded(generated: dict[str, str]) -> None:
    assert generate_treebank() == generated
    other = generate_treebank(seed=1, splits=(("dev", 20),))
    assert other["en_sample-ud-dev.conllu"] != generated["en_sample-ud-dev.conllu"][: len(other)]
    assert other["en_sample-ud-dev.conllu"].count("# sent_id") == 20


def test_main_writes_to_a_folder(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").is_file()
    assert main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "en_sample-ud-dev.conllu").write_text("changed")
    assert main(["--out", str(tmp_path), "--check"]) == 1


def test_sizes_and_lengths(splits: dict[str, list[Sentence]]) -> None:
    assert {k: len(v) for k, v in splits.items()} == dict(SPLITS)
    total_bytes = sum(p.stat().st_size for p in sample_treebank_dir().iterdir())
    assert total_bytes < 1_500_000
    lengths = [len(s) for sents in splits.values() for s in sents]
    assert min(lengths) >= 3 and max(lengths) <= 40
    assert 13 <= statistics.mean(lengths) <= 17
    assert sum(n >= 25 for n in lengths) >= 100  # a real tail of long sentences


def test_round_trip_and_text(splits: dict[str, list[Sentence]], generated: dict[str, str]) -> None:
    for split, sentences in splits.items():
        assert "".join(s.to_conllu() for s in sentences) == generated[f"en_sample-ud-{split}.conllu"]
        assert [s.sent_id for s in sentences] == [f"{split}-{i}" for i in range(1, len(sentences) + 1)]
        for s in sentences:
            assert _surface_text(s) == s.text, s.sent_id


def test_annotation_coverage(splits: dict[str, list[Sentence]]) -> None:
    train = splits["train"]
    deprels = collections.Counter(r for s in train for r in s.deprels or [])
    assert REQUIRED_DEPRELS <= set(deprels), REQUIRED_DEPRELS - set(deprels)
    for rel in REQUIRED_DEPRELS:
        assert deprels[rel] >= 10, rel
    upos = {u for s in train for u in s.upos}
    assert upos <= UD_UPOS and {"NOUN", "VERB", "ADJ", "ADP", "DET", "PRON", "AUX"} <= upos
    assert all(s.heads is not None and s.heads.count(0) == 1 for s in train)
    for s in train:
        for tok in s.word_tokens:
            assert tok["lemma"] not in ("", "_") and tok["upos"] != "_"


def test_multiword_tokens(splits: dict[str, list[Sentence]]) -> None:
    mwt = collections.Counter(
        tok["form"].lower() for s in splits["train"] for tok in s.tokens if isinstance(tok["id"], tuple)
    )
    assert set(mwt) >= {"cannot", "gonna"}
    assert sum(mwt.values()) >= 30
    s = next(s for s in splits["train"] if any(t["form"] == "cannot" for t in s.tokens))
    i = next(k for k, t in enumerate(s.tokens) if t["form"] == "cannot")
    assert [s.tokens[i + 1]["form"], s.tokens[i + 2]["form"]] == ["can", "not"]
    assert "cannot" in (s.text or "")


def test_vocabulary_and_ambiguity(splits: dict[str, list[Sentence]]) -> None:
    tags: dict[str, set[str]] = collections.defaultdict(set)
    for s in splits["train"]:
        for tok in s.word_tokens:
            tags[tok["form"].lower()].add(tok["upos"])
    assert 200 <= len(tags) <= 1200
    noun_and_verb = [w for w, t in tags.items() if {"NOUN", "VERB"} <= t]
    assert len(noun_and_verb) >= 10, noun_and_verb
    assert {"SCONJ", "PRON", "DET"} <= tags["that"]
    assert {"ADP", "PART"} <= tags["to"]


def test_splits_do_not_share_sentences(splits: dict[str, list[Sentence]]) -> None:
    texts = {split: {s.text for s in sents} for split, sents in splits.items()}
    assert len(texts["train"]) == len(splits["train"])
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]


def test_readme_states_origin_and_license() -> None:
    readme = (sample_treebank_dir() / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme and "MIT" in readme
    assert "python tools/sample_treebank.py" in readme
