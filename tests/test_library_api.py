"""What the commands do, called from Python: treebank files, the model to load, the tokenizer kept or dropped, the
parse formats and the scores of ``unnparse evaluate``."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from tests.parser_fixtures import conllu_text, write_treebank
from unnparse.conllu import Sentence, read_conllu
from unnparse.evaluation.attachment import AlignmentError
from unnparse.evaluation.scoring import REALIGNED, annotated_columns, choose_alignment, evaluate_parses
from unnparse.parser import loading
from unnparse.parser.loading import NoModelFoundError, default_model_dir
from unnparse.parser.output_formats import conllu_with_probs, draw_tree, render, to_json_line
from unnparse.parser.predictor import ParsedSentence, Predictor
from unnparse.parser.treebank import TreebankError, read_treebank, split_file, treebank_files
from unnparse.text import tokenizer_choice
from unnparse.text import trained_tokenizer as tt
from unnparse.text.tokenizer_choice import MIN_TOKENIZER_SECONDS, train_and_choose_tokenizer


def _sentences(tmp_path: Path, n: int = 3, seed: int = 1):
    path = tmp_path / f"s{seed}.conllu"
    path.write_text(conllu_text(n, seed), encoding="utf-8")
    return read_conllu(path)


# ------------------------------------------------------------------------------------------------ treebank files
def test_treebank_files_from_a_treebank_or_given_files(tmp_path):
    folder = write_treebank(tmp_path)
    files = treebank_files("UD_Toy-Test", tmp_path, download=False)
    assert files.train == [folder / "toy-ud-train.conllu"]
    assert (files.dev, files.test) == (folder / "toy-ud-dev.conllu", folder / "toy-ud-test.conllu")
    mine = tmp_path / "mine-ud-train.conllu"
    mine.write_text(conllu_text(4, 9), encoding="utf-8")
    given = treebank_files("UD_Toy-Test", tmp_path, train=[mine], download=False)
    assert given.train == [mine] and given.dev == folder / "toy-ud-dev.conllu"  # the files given win
    alone = treebank_files(None, train=[mine], dev=folder / "toy-ud-dev.conllu")
    assert alone.name == "mine" and alone.test is None and alone.dev == folder / "toy-ud-dev.conllu"
    assert split_file(files, "test") == files.test and split_file(files, "dev") == files.dev


def test_treebank_files_say_what_is_missing(tmp_path):
    with pytest.raises(TreebankError, match=r"^give --treebank NAME or --train FILE \(and --dev FILE\)$"):
        treebank_files(None)
    folder = write_treebank(tmp_path)
    (folder / "toy-ud-train.conllu").unlink()
    with pytest.raises(TreebankError, match="treebank UD_Toy-Test has no \\*-ud-train\\*.conllu file; pass --train"):
        treebank_files("UD_Toy-Test", tmp_path, download=False)
    files = treebank_files("UD_Toy-Test", tmp_path, need_train=False, download=False)  # enough to evaluate
    (folder / "toy-ud-dev.conllu").unlink()
    files = treebank_files("UD_Toy-Test", tmp_path, need_train=False, download=False)
    with pytest.raises(TreebankError, match="^treebank UD_Toy-Test has no dev file$"):
        split_file(files, "dev")
    with pytest.raises(TreebankError, match="not found"):
        treebank_files("UD_Nowhere-Test", tmp_path, download=False)


def test_read_treebank_summarizes_each_file(tmp_path):
    folder = write_treebank(tmp_path, n_train=7, n_dev=3)
    data = read_treebank(treebank_files("UD_Toy-Test", tmp_path, download=False))
    assert (len(data.train), len(data.dev)) == (7, 3)
    (train, dev) = data.summary
    assert (train.split, train.file, train.sentences) == ("train", str(folder / "toy-ud-train.conllu"), 7)
    assert (dev.split, dev.sentences, dev.words) == ("dev", 3, sum(len(s) for s in data.dev))
    assert train.words == sum(len(s) for s in data.train)
    no_dev = read_treebank(treebank_files(None, train=[folder / "toy-ud-train.conllu"]))
    assert no_dev.dev == [] and [row.split for row in no_dev.summary] == ["train"]


# ------------------------------------------------------------------------------------------------ model discovery
def test_default_model_dir_given_then_environment_then_newest(tmp_path, monkeypatch):
    assert default_model_dir(tmp_path / "m") == (tmp_path / "m", None)
    assert default_model_dir(environ={"UNNPARSE_MODEL": "elsewhere"}) == (Path("elsewhere"), "$UNNPARSE_MODEL")
    root = tmp_path / "models"
    with pytest.raises(NoModelFoundError, match="no model given and none found under .*: train one with"):
        default_model_dir(environ={}, models_dir=root)
    kinds = {"old": "parser", "new": "parser-ensemble", "newest": "mnist"}
    treebanks = {"old": "UD_English-ParTUT", "new": "UD_English-EWT", "newest": None}
    for age, name in enumerate(kinds):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"treebank": treebanks[name]}))
        stamp = time.time() - 100 + age
        os.utime(root / name / "config.json", (stamp, stamp))
    monkeypatch.setattr(loading, "model_kind", lambda directory: kinds[Path(directory).name])
    chosen, reason = default_model_dir(environ={}, models_dir=root)
    # the newest parser, not the MNIST model; both parsers are English
    assert chosen == root / "new" and reason == f"the most recent of 2 English models under {root}"
    monkeypatch.chdir(tmp_path)
    assert default_model_dir(environ={}) == (Path("models/new"), "the most recent of 2 English models under ./models")


def test_default_model_dir_refuses_to_choose_between_languages(tmp_path):
    root = tmp_path / "models"
    for name, treebank in (("en", "UD_English-ParTUT"), ("cs", "UD_Czech-PDT"), ("mine", None)):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"kind": "parser", "treebank": treebank}))
        (root / name / "model.safetensors").write_bytes(b"")  # a parser's directory before manifests
    with pytest.raises(NoModelFoundError) as err:
        default_model_dir(environ={}, models_dir=root)
    message = str(err.value)
    assert "different languages: cs (Czech), en (English), mine (language unknown)" in message
    assert "--model DIR" in message and "\n" not in message
    (root / "cs" / "config.json").unlink()
    (root / "mine" / "config.json").unlink()
    assert default_model_dir(environ={}, models_dir=root) == (root / "en", f"the only model under {root}")
    assert loading.treebank_language("UD_Ancient_Greek-PROIEL") == "Ancient Greek"
    assert loading.treebank_language("my-corpus") is None


# ------------------------------------------------------------------------------------------------ tokenizer choice
class _FakeTokenizer:
    def __init__(self) -> None:
        self.saved_to: list[Path] = []

    def save(self, directory) -> None:
        self.saved_to.append(Path(directory))


def _comparison(trained_f1, rules_f1, trained_digits=5):
    kinds = {"digits": (5, 5), "abbreviations": (2, 2), "punctuation": (9, 9)}
    return {
        "trained": {"f1": trained_f1, "kinds": {**kinds, "digits": (trained_digits, 5)}, "numbers": 10},
        "rules": {"f1": rules_f1, "kinds": kinds, "numbers": 10},
    }


@pytest.mark.parametrize(
    ("trained", "rules", "digits", "outcome", "message"),
    [
        ((99.0, 90.0), (95.0, 80.0), 5, "kept", "tokenizer saved to {dir}: dev F1 tokens 99.00, sentences 90.00"),
        ((95.3, 80.0), (95.0, 80.0), 5, "dropped", "on dev the trained tokenizer (tokens 95.30, sentences 80.00"),
        ((99.0, 90.0), (95.0, 80.0), 4, "kept", "tokenizer saved to {dir}: dev F1 tokens 99.00"),  # one token: noise
        ((99.0, 90.0), (95.0, 80.0), 3, "dropped", "on dev the trained tokenizer (tokens 99.00, sentences 90.00"),
        (None, None, 5, "unchecked", "tokenizer saved to {dir} (no dev set to check it on)"),
    ],
)
def test_the_tokenizer_is_kept_only_when_clearly_better_and_never_worse_on_hard_tokens(
    tmp_path, monkeypatch, trained, rules, digits, outcome, message
):
    fake = _FakeTokenizer()
    calls: list[dict] = []
    scores = {} if trained is None else {"tokens": trained[0], "sentences": trained[1], "words": 99.0}
    monkeypatch.setattr(tt, "train_tokenizer", lambda *a, **kw: calls.append(kw) or (fake, scores))
    if trained is not None:

        def f1(pair):
            return {"tokens": pair[0], "sentences": pair[1], "words": 99.0}

        monkeypatch.setattr(
            tokenizer_choice, "compare_on_dev", lambda tok, dev: _comparison(f1(trained), f1(rules), digits)
        )
    lines: list[str] = []
    train, dev = _sentences(tmp_path), _sentences(tmp_path, seed=2) if trained else []
    decision = train_and_choose_tokenizer(tmp_path, train, dev, steps=7, seed=3, max_seconds=60.0, log=lines.append)
    assert decision.outcome == outcome and decision.saved == (outcome != "dropped")
    assert fake.saved_to == ([tmp_path] if decision.saved else [])
    assert calls[0]["steps"] == 7 and calls[0]["seed"] == 3 and calls[0]["max_seconds"] == 60.0
    assert lines[0] == "training the tokenizer and sentence splitter (at most 7 updates, at most 60 s)"
    assert decision.message.startswith(message.format(dir=tmp_path)), decision.message
    if outcome == "dropped":
        assert ("digits" in decision.message) == (digits < 4)


def test_compare_on_dev_counts_the_hard_tokens_each_segmenter_gets(tmp_path):
    from unnparse.text.raw_text import iter_sentences_from_text

    gold_text = (
        "# text = In 2019 Mr. Smith paid 3,500 dollars... really?!\n"
        "1\tIn\t_\t_\t_\t_\t_\t_\t_\t_\n2\t2019\t_\t_\t_\t_\t_\t_\t_\t_\n3\tMr.\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "4\tSmith\t_\t_\t_\t_\t_\t_\t_\t_\n5\tpaid\t_\t_\t_\t_\t_\t_\t_\t_\n6\t3,500\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "7\tdollars\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n8\t...\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "9\treally\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n10\t?!\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
    )
    gold = read_conllu(io.StringIO(gold_text), name="g", require_heads=False)

    class DigitSplitter:
        """The rules, but every number split into its characters."""

        def iter_sentences(self, lines, source="<dev>"):
            for sentence in iter_sentences_from_text(lines):
                tokens = []
                for token in sentence.surface_tokens():
                    parts = list(token.form) if any(ch.isdigit() for ch in token.form) else [token.form]
                    for i, part in enumerate(parts):
                        tokens.append((part, None, token.space_after if i == len(parts) - 1 else False))
                yield Sentence.from_tokens(tokens)

    result = tokenizer_choice.compare_on_dev(DigitSplitter(), gold)
    assert result["trained"]["kinds"]["digits"] == (0, 2)
    assert result["rules"]["kinds"]["digits"][1] == 2 and result["rules"]["kinds"]["abbreviations"][1] == 1
    assert result["rules"]["kinds"]["punctuation"][1] == 2
    assert result["trained"]["f1"]["tokens"] < result["rules"]["f1"]["tokens"]
    # split into characters, only the one-digit number stays whole; the rules keep every number whole
    assert result["trained"]["numbers"] == 1 and result["rules"]["numbers"] == len(tokenizer_choice.NUMBER_PROBE)


def test_no_tokenizer_is_trained_without_time(tmp_path, monkeypatch):
    monkeypatch.setattr(tt, "train_tokenizer", lambda *a, **kw: pytest.fail("trained without time"))
    decision = train_and_choose_tokenizer(tmp_path, [], [], steps=10, max_seconds=MIN_TOKENIZER_SECONDS - 1)
    assert decision.outcome == "skipped" and not decision.saved
    assert decision.message == "only 4 s of --max-minutes left: raw text will be split by the rules"
    assert tokenizer_choice.MIN_TOKENIZER_SECONDS == MIN_TOKENIZER_SECONDS


# ------------------------------------------------------------------------------------------------ output formats
def test_render_writes_each_format(tmp_path):
    sentence = _sentences(tmp_path, n=1)[0]
    n = len(sentence)
    marginals = [[1.0 if h == sentence.heads[d] else 0.0 for h in range(n + 1)] for d in range(n)]
    assert render(ParsedSentence(sentence), "conllu") == sentence.to_conllu()
    with_probs = render(ParsedSentence(sentence, marginals), "conllu")
    assert with_probs == conllu_with_probs(sentence, marginals)
    rows = [r.split("\t") for r in with_probs.splitlines() if r and not r.startswith("#")]
    assert all("ArcProb=1.0000" in r[9] for r in rows) and "ArcProb" not in sentence.to_conllu()
    line = render(ParsedSentence(sentence, marginals), "json")
    assert line == to_json_line(sentence, marginals) + "\n" and json.loads(line)["marginals"] == marginals
    assert render(ParsedSentence(sentence), "tree") == draw_tree(sentence) + "\n"
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        render(ParsedSentence(sentence), "xml")


# ------------------------------------------------------------------------------------------------ evaluation
def test_evaluate_parses_with_the_gold_words(tmp_path):
    gold = _sentences(tmp_path, n=4)
    pred = [s.copy() for s in gold]
    result = evaluate_parses(gold, pred, tag_columns=("upos", "xpos"))
    assert result.alignment == "words" and result.aligned is None and result.relations is None
    assert result.attachment is not None and result.attachment.uas == 100.0
    assert result.tags == {"upos": 100.0}  # xpos is not annotated: not scored
    assert annotated_columns(pred, ("upos", "xpos", "feats")) == ["upos"]
    assert evaluate_parses(gold, pred, per_relation=True).relations


def test_evaluate_parses_through_the_text_when_the_words_differ(tmp_path):
    gold = _sentences(tmp_path, n=4)
    pred = gold[:2]  # a sentence missing: auto scores through the text, and says so
    assert choose_alignment(gold, gold) == "words" and choose_alignment(gold, pred) == "characters"
    assert choose_alignment(gold, pred, "words") == "words"
    told: list[str] = []
    with pytest.raises(AlignmentError):
        evaluate_parses(gold, pred, log=told.append)  # the texts differ too
    assert told == [REALIGNED]
    result = evaluate_parses(gold, [s.copy() for s in gold], alignment="characters", per_relation=True)
    assert result.alignment == "characters" and result.attachment is None
    assert result.aligned is not None and result.aligned.las.f1 == 100.0 and result.relations
    with pytest.raises(AlignmentError):
        evaluate_parses(gold, pred, alignment="words")
    with pytest.raises(ValueError, match="unknown alignment"):
        evaluate_parses(gold, gold, alignment="tokens")


# ------------------------------------------------------------------------------------------------ parsing gold again
class _Echo:
    """Stands for a parser: tags UPOS, and 'parses' by giving back what it is given."""

    featurizer = type("F", (), {"tags": ["upos"]})()
    text_sentences = Predictor.text_sentences
    input_sentences = Predictor.input_sentences
    multiword: dict[str, list[str]] = {}  # noqa: RUF012 - a test double
    tokenizer = None

    def __init__(self) -> None:
        self.given: list[Sentence] = []

    def predict(self, sentences, **kwargs):
        self.given = list(sentences)
        return (ParsedSentence(s) for s in self.given)


def test_reparse_clears_the_tagged_columns_or_parses_the_text(tmp_path):
    gold = _sentences(tmp_path, n=3)
    echo = _Echo()
    predicted, columns = Predictor.reparse(echo, gold)
    assert columns == ("upos",) and [s.words for s in predicted] == [s.words for s in gold]
    assert all(tag == "_" for s in echo.given for tag in s.column("upos"))  # cleared before parsing
    assert any(tag != "_" for s in gold for tag in s.column("upos"))  # the gold sentences are left as they were
    predicted, columns = Predictor.reparse(echo, gold, raw_text=True, tokenizer="rules", source="g.conllu")
    assert columns == () and "".join(w for s in predicted for w in s.words) == "".join(w for s in gold for w in s.words)
    assert predicted[0].source == "g.conllu (text)"


def test_input_sentences_reads_each_input_format():
    echo = _Echo()
    text = io.BytesIO(b"The dog saw a cat. A man reads.\n")
    sentences = list(Predictor.input_sentences(echo, text, "text", name="in.txt", tokenizer="rules"))
    assert [s.words for s in sentences] == [["The", "dog", "saw", "a", "cat", "."], ["A", "man", "reads", "."]]
    assert sentences[0].source == "in.txt"
    tokenized = list(Predictor.input_sentences(echo, io.BytesIO(b"a b c\n\nd e\n"), "tokenized"))
    assert [s.words for s in tokenized] == [["a", "b", "c"], ["d", "e"]]
    conllu = io.BytesIO(conllu_text(2, 5).encode())
    assert len(list(Predictor.input_sentences(echo, conllu, "conllu", name="g.conllu"))) == 2
    with pytest.raises(ValueError, match="unknown input format 'xml'"):
        Predictor.input_sentences(echo, io.BytesIO(b""), "xml")
    with pytest.raises(ValueError, match="has no trained tokenizer"):
        Predictor.input_sentences(echo, io.BytesIO(b"x"), "text", tokenizer="model")


# ------------------------------------------------------------------------------------------------ parsing whole files
def test_parse_file_streams_every_parse_and_keeps_the_old_output_on_a_bad_input(tmp_path):
    import torch

    from unnparse.conllu.errors import CoNLLUError
    from unnparse.parser.parse_jobs import ParseOptions, parse_file
    from unnparse.parser.parser import Parser, default_config

    torch.manual_seed(0)
    train = _sentences(tmp_path, n=6, seed=1)
    parser = Parser.build(default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), train)
    gold = tmp_path / "in.conllu"
    gold.write_text(conllu_text(5, 3), encoding="utf-8")
    out = tmp_path / "out.conllu"
    seen: list[int] = []
    options = ParseOptions(input_format="conllu", output_format="json")
    done = parse_file(parser, gold, out, options, on_parsed=lambda count: seen.append(count.sentences))
    expected = [render(p, "json") for p in parser.predict(read_conllu(gold))]
    assert out.read_text(encoding="utf-8") == "".join(expected)
    assert (done.sentences, seen) == (5, [1, 2, 3, 4, 5])
    assert done.words == sum(len(s) for s in read_conllu(gold))
    to_stream = io.StringIO()
    parse_file(parser, io.BytesIO(gold.read_bytes()), to_stream, options)
    assert to_stream.getvalue() == "".join(expected)  # streams as from stdin to stdout
    shard = io.StringIO()
    parse_file(
        parser, gold, shard, ParseOptions(input_format="conllu", output_format="json", shard="1/2", shard_block=2)
    )
    assert shard.getvalue() == "".join(expected[2:4])  # blocks of 2 dealt to 2 shards: shard 1 holds the second
    bad = tmp_path / "bad.conllu"
    bad.write_text(conllu_text(2, 3) + "1\tdog\t_\n\n", encoding="utf-8")
    with pytest.raises(CoNLLUError, match="bad.conllu"):
        parse_file(parser, bad, out, options)
    assert out.read_text(encoding="utf-8") == "".join(expected)  # the previous output is kept whole


def test_copied_columns_are_the_ones_kept_from_the_input(tmp_path):
    from unnparse.evaluation.scoring import copied_columns

    gold = _sentences(tmp_path, n=3)
    assert copied_columns(gold, [s.copy() for s in gold], ("upos", "xpos", "lemma")) == ["upos", "lemma"]
    relabelled = [s.with_predictions(s.heads, s.deprels) for s in gold]  # tags still as given
    retagged = [
        s.without_tags(["upos"]).with_predictions(s.heads, s.deprels, tags={"upos": ["X"] * len(s)}) for s in gold
    ]
    assert copied_columns(gold, relabelled, ("upos",)) == ["upos"]
    assert copied_columns(gold, retagged, ("upos", "lemma")) == ["lemma"]
    assert copied_columns(gold, gold[:2], ("upos",)) == []  # the words do not line up: nothing to say


def test_clear_tags_makes_the_model_predict_what_the_input_had(tmp_path):
    import torch

    from unnparse.parser.parse_jobs import ParseOptions, parse_file
    from unnparse.parser.parser import Parser, default_config

    torch.manual_seed(0)
    parser = Parser.build(
        default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), _sentences(tmp_path, 6)
    )
    given = tmp_path / "given.conllu"
    given.write_text("1\tdog\tDOGGY\tX\t_\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    kept, cleared = io.StringIO(), io.StringIO()
    parse_file(parser, given, kept, ParseOptions(input_format="conllu"))
    parse_file(parser, given, cleared, ParseOptions(input_format="conllu", clear_tags=True))
    assert kept.getvalue().split("\t")[2:4] == ["DOGGY", "X"]
    lemma, upos = cleared.getvalue().split("\t")[2:4]
    assert (lemma, upos) != ("DOGGY", "X") and "_" not in (lemma, upos)


def test_a_misspelt_treebank_gets_a_suggestion_and_a_missing_data_folder_is_named(tmp_path):
    write_treebank(tmp_path, name="UD_Czech-PDT")
    with pytest.raises(TreebankError, match=r"did you mean UD_Czech-PDT\?"):
        treebank_files("UD_Czech-PTD", tmp_path, download=False)
    with pytest.raises(TreebankError, match=r"did you mean UD_Czech-PDT\?"):
        treebank_files("UD_czech-pdt", tmp_path, download=False)
    with pytest.raises(TreebankError, match=r"the data folder .*nowhere does not exist"):
        treebank_files("UD_Czech-PDT", tmp_path / "nowhere", download=False)


def test_conllu_read_as_text_is_named_and_still_parsed_as_asked(tmp_path):
    from unnparse.parser.parse_jobs import ParseOptions, looks_like_conllu, parse_stream

    conllu = conllu_text(2, 3).encode()
    assert looks_like_conllu(conllu) and looks_like_conllu(b"\n1\ta\t_\t_\t_\t_\t0\troot\t_\t_\n")
    assert not looks_like_conllu(b"The cat sat.\n# not a comment\n") and not looks_like_conllu(b"")
    echo, warnings, out = _Echo(), [], io.StringIO()
    done = parse_stream(
        echo, io.BytesIO(conllu), out, ParseOptions(input_format="tokenized"), on_warning=warnings.append
    )
    assert len(warnings) == 1 and "--input-format conllu" in warnings[0]
    assert done.sentences > 0  # read as asked: every line a sentence
    plain, warnings = io.BytesIO(b"The cat sat on the mat.\n" * 2000), []
    parse_stream(echo, plain, io.StringIO(), ParseOptions(tokenizer="rules"), on_warning=warnings.append)
    assert not warnings and len(echo.given) == 2000  # the whole input, its first bytes included
