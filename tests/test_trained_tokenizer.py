"""The tokenizer learnt from a treebank: its training labels, that it learns a convention the rules miss, files."""

from __future__ import annotations

import io
import random

import pytest
import torch

from unnparse.conllu import Sentence, read_conllu
from unnparse.evaluation.text_alignment import segmentation_scores
from unnparse.model_files import ModelFileError, weights_path
from unnparse.text import trained_tokenizer as tt
from unnparse.text.multiword import multiword_dictionary
from unnparse.text.trained_tokenizer import (
    SENTENCE_END,
    TOKEN_END,
    WORD_END,
    TrainedTokenizer,
    labelled_paragraphs,
    rule_scores,
    train_tokenizer,
)


def _row(i, form, misc="_"):
    return f"{i}\t{form}\t_\t_\t_\t_\t{0 if i == 1 else 1}\t{'root' if i == 1 else 'dep'}\t_\t{misc}"


def test_labels_of_multiword_tokens_spaces_and_sentence_ends():
    text = "\n".join(
        [
            "1-2\tAnn's\t_\t_\t_\t_\t_\t_\t_\t_",
            _row(1, "Ann"),
            _row(2, "'s"),
            "3-4\tdu\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No",
            _row(3, "de"),
            _row(4, "le"),
            _row(5, "."),
            "",
            _row(1, "Go", "SpaceAfter=No"),
            _row(2, "!"),
            "",
            "",
        ]
    )
    sentences = read_conllu(io.StringIO(text))
    [(chars, labels)] = labelled_paragraphs(sentences)
    assert chars == "Ann's du. Go! "
    expected = {2: WORD_END, 4: TOKEN_END, 7: TOKEN_END, 8: SENTENCE_END, 11: TOKEN_END, 12: SENTENCE_END}
    assert labels == [expected.get(i, 0) for i in range(len(chars))]
    assert multiword_dictionary(sentences, spelt_out=False) == {"du": ["de", "le"]}


def _corpus(n: int, seed: int) -> list[Sentence]:
    """Sentences in lowercase that end in '.', with hyphenated words the treebank splits: a-b -> a | - | b."""
    rng = random.Random(seed)
    words = ["part", "session", "long", "term", "red", "cat", "sat", "on", "mat", "well", "known", "dog"]
    out = []
    for _ in range(n):
        tokens: list[tuple[str, None, bool]] = []
        for _ in range(rng.randint(3, 8)):
            if rng.random() < 0.3:
                tokens += [(rng.choice(words), None, False), ("-", None, False), (rng.choice(words), None, True)]
            else:
                tokens.append((rng.choice(words), None, True))
        tokens[-1] = (tokens[-1][0], None, False)
        tokens.append((".", None, True))
        sentence = Sentence.from_tokens(tokens)
        out.append(sentence.with_predictions([0] + [1] * (len(sentence) - 1), ["root"] + ["dep"] * (len(sentence) - 1)))
    return out


def test_learns_a_convention_that_the_rules_miss():
    train, test = _corpus(300, seed=1), _corpus(60, seed=2)
    tokenizer, dev_scores = train_tokenizer(train, test[:20], steps=150, eval_every=75, seed=0)
    texts = [text for text, _labels in labelled_paragraphs(test)]
    predicted = [s for text in texts for s in tokenizer.iter_sentences([text])]
    learnt = {k: v.f1 for k, v in segmentation_scores(test, predicted).items()}
    rules = rule_scores(test)
    assert learnt["tokens"] > 99.0 and learnt["sentences"] > 95.0, learnt
    assert rules["tokens"] < 90.0 and rules["sentences"] < 10.0, rules  # hyphens kept, lowercase starts
    assert set(dev_scores) == {"tokens", "sentences", "words"}


@pytest.fixture(scope="module")
def small_tokenizer():
    return train_tokenizer(_corpus(40, seed=3), steps=5, seed=0)[0]


def test_save_load_roundtrip_and_corrupt_file(small_tokenizer, tmp_path):
    (tmp_path / "config.json").write_text('{"kind": "parser"}')
    small_tokenizer.save(tmp_path)
    loaded = TrainedTokenizer.load(tmp_path)
    text = "long term red cat sat on well-known mat. dog sat"
    assert loaded.segment(text) == small_tokenizer.segment(text)
    assert loaded.labels(text * 40) == small_tokenizer.labels(text * 40)  # several windows

    weights = weights_path(tmp_path, "tokenizer")
    assert weights.name.startswith("tokenizer-") and not (tmp_path / tt.TOKENIZER_FILE).exists()
    weights.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match=f"{weights.name}: truncated"):
        TrainedTokenizer.load(tmp_path)
    with pytest.raises(ModelFileError, match="tokenizer.multiword is missing"):
        TrainedTokenizer.load(tmp_path, {"tokenizer": {"chars": [], "hidden": 128, "char_dim": 64}})


def test_scores_and_labels_do_not_depend_on_the_batch(small_tokenizer):
    net, short, long = small_tokenizer.net.eval(), "red cat sat.", "long term red cat sat on well-known mat. dog"
    alone, batched = small_tokenizer.encode([short]), small_tokenizer.encode([short, long])
    with torch.no_grad():
        a = net(alone.chars, alone.categories, alone.lengths)[0]
        b = net(batched.chars, batched.categories, batched.lengths)[0, : len(short)]
    torch.testing.assert_close(a, b)  # the padding after the short text does not reach it
    text = "long term red cat sat on well-known mat. dog sat " * 23  # the last window is a short one
    assert small_tokenizer.labels(text, batch_size=64) == small_tokenizer.labels(text, batch_size=1)


def test_segment_builds_multiword_tokens_and_keeps_every_character(small_tokenizer, monkeypatch):
    tokenizer = TrainedTokenizer(small_tokenizer.net, small_tokenizer.chars, {"du": ["de", "le"]})
    monkeypatch.setattr(
        tokenizer,
        "labels",
        lambda text: [TOKEN_END if text[i + 1 : i + 2] in ("", " ") else 0 for i in range(len(text))],
    )
    [tokens] = tokenizer.segment("Du du")
    assert tokens == [("Du", ["De", "le"], True), ("du", ["de", "le"], True)]
    sentence = next(tokenizer.iter_sentences(["Du du"]))
    lines = sentence.to_conllu().splitlines()
    assert lines[2].split("\t")[:2] == ["1-2", "Du"] and lines[3].split("\t")[1] == "De"
    assert [s.words for s in read_conllu(io.StringIO(sentence.to_conllu()), require_heads=False)] == [
        ["De", "le", "de", "le"]
    ]


def test_streaming_a_long_paragraph_keeps_every_character(small_tokenizer, monkeypatch):
    monkeypatch.setattr(tt, "_STREAM_LIMIT", 300)
    lines = ["long term red cat sat on well-known mat. dog sat on the mat."] * 30
    sentences = list(small_tokenizer.iter_sentences(lines))
    assert "".join(w for s in sentences for w in s.words) == "".join("".join(lines).split())
    assert [s.sent_id for s in sentences] == [str(i) for i in range(1, len(sentences) + 1)]


def test_numbers_are_never_split_inside_whatever_the_model_says():
    from unnparse.text.trained_tokenizer import INSIDE, TOKEN_END, _numbers_whole

    text = "In 2019 it cost 3,500.75 at 12:30."
    labels = [TOKEN_END] * len(text)  # a model that ends a token everywhere
    fixed = _numbers_whole(text, list(labels))
    for number in ("2019", "3,500.75", "12:30"):
        start = text.index(number)
        assert all(label == INSIDE for label in fixed[start : start + len(number) - 1]), number
        assert fixed[start + len(number) - 1] == TOKEN_END
    assert fixed[text.index("cost")] == TOKEN_END  # words are left as the model says
    assert fixed[-1] == TOKEN_END  # the final period, after the number, still ends


def test_prefetched_labels_of_many_texts_give_the_sentences_each_text_gets_alone(small_tokenizer, monkeypatch):
    texts = ["red cat sat. dog sat on mat.", "long term red cat sat on well-known mat.\n\nwell known dog.", "mat."]
    alone = [[s.to_conllu() for s in small_tokenizer.iter_sentences(t.split("\n"), source="x")] for t in texts]
    calls: list[int] = []
    real = small_tokenizer.labels_many

    def counted(paragraphs, **kwargs):
        calls.append(len(paragraphs))
        return real(paragraphs, **kwargs)

    monkeypatch.setattr(small_tokenizer, "labels_many", counted)
    small_tokenizer.prefetch([t.split("\n") for t in texts])
    assert calls == [4]  # the four paragraphs of the three texts, in one call
    ahead = [[s.to_conllu() for s in small_tokenizer.iter_sentences(t.split("\n"), source="x")] for t in texts]
    assert calls == [4] and ahead == alone  # every paragraph was found labelled
    assert small_tokenizer._prefetched == {}  # each used once
    again = [s.to_conllu() for s in small_tokenizer.iter_sentences(texts[0].split("\n"), source="x")]
    assert calls == [4, 1] and again == alone[0]
