"""Multiword tokens from the treebank for raw text split by the rules: the dictionary and the expansion."""

from __future__ import annotations

import io

from unnparse.conllu import read_conllu
from unnparse.text.multiword import expand_multiword, multiword_dictionary
from unnparse.text.raw_text import iter_sentences_from_text

TREEBANK = """# text = We cannot go.
1\tWe\twe\tPRON\t_\t_\t3\tnsubj\t_\t_
2-3\tcannot\t_\t_\t_\t_\t_\t_\t_\t_
2\tcan\tcan\tAUX\t_\t_\t4\taux\t_\t_
3\tnot\tnot\tPART\t_\t_\t4\tadvmod\t_\t_
4\tgo\tgo\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_

# text = Du pain.
1-2\tDu\t_\t_\t_\t_\t_\t_\t_\t_
1\tDe\tde\tADP\t_\t_\t3\tcase\t_\t_
2\tle\tle\tDET\t_\t_\t3\tdet\t_\t_
3\tpain\tpain\tNOUN\t_\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# text = A can.
1\tA\ta\tDET\t_\t_\t2\tdet\t_\t_
2\tcan\tcan\tNOUN\t_\t_\t0\troot\t_\tSpaceAfter=No
3\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_

"""


def test_the_dictionary_holds_the_treebank_multiword_tokens():
    sentences = read_conllu(io.StringIO(TREEBANK), name="t")
    assert multiword_dictionary(sentences) == {"cannot": ["can", "not"], "du": ["de", "le"]}
    # a trained segmenter splits "cannot" itself: its dictionary keeps only what the words do not spell
    assert multiword_dictionary(sentences, spelt_out=False) == {"du": ["de", "le"]}


def test_rule_tokens_become_multiword_tokens_with_their_words():
    dictionary = {"cannot": ["can", "not"], "du": ["de", "le"]}
    text = ["Cannot you see? Du pain, a can."]
    out = list(expand_multiword(iter_sentences_from_text(text), dictionary))
    assert [s.words for s in out] == [["Can", "not", "you", "see", "?"], ["De", "le", "pain", ",", "a", "can", "."]]
    first = [t for t in out[0].surface_tokens() if t.multiword]
    assert [(t.form, t.words) for t in first] == [("Cannot", ("Can", "not"))]
    assert out[0].text == "Cannot you see?"
    plain = list(iter_sentences_from_text(["Nothing to expand here."]))
    assert [s.to_conllu() for s in expand_multiword(iter(plain), dictionary)] == [s.to_conllu() for s in plain]


def test_a_parser_splits_raw_text_with_its_treebank_dictionary():
    import torch

    from unnparse.parser.parser import Parser, default_config

    torch.manual_seed(0)
    sentences = read_conllu(io.StringIO(TREEBANK), name="t")
    parser = Parser.build(default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), sentences)
    assert parser.config["multiword"] == {"cannot": ["can", "not"], "du": ["de", "le"]}
    parsed = parser.parse(["We cannot go."])
    assert parsed[0].words == ["We", "can", "not", "go", "."]
