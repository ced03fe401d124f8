"""Tests for unnparse.conllu (and the atomic writers in unnparse.io_utils)."""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path

import pytest

from unnparse.conllu import (
    CoNLLUError,
    MultipleRootsWarning,
    NoSentencesError,
    Sentence,
    iter_conllu,
    read_conllu,
    write_conllu,
)
from unnparse.io_utils import atomic_output, atomic_write_bytes, atomic_write_text

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_FILES = sorted((SHARED / "ud").glob("*/*.conllu")) + sorted((SHARED / "ud-samples").glob("*/*.conllu"))

# A sentence with everything: comments, a multiword token, an empty node, DEPS and MISC.
RICH = (
    "# newdoc id = d1\n"
    "# sent_id = s1\n"
    "# text = Don't stop now\n"
    "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n"
    "1\tDo\tdo\tAUX\tVBP\tMood=Ind|Tense=Pres\t3\taux\t3:aux\t_\n"
    "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t3:advmod\t_\n"
    "3\tstop\tstop\tVERB\tVB\tVerbForm=Inf\t0\troot\t0:root\tGloss=halt|Dup=1|Dup=2\n"
    "3.1\tgo\tgo\tVERB\t_\t_\t_\t_\t3:conj\tKey=\n"
    "4\tnow\tnow\tADV\tRB\t_\t3\tadvmod:tmod\t3:advmod\tSpaceAfter=No\n"
    "\n"
)
SIMPLE = "# sent_id = a\n1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n2\t!\t!\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n"


def _sentence_text(rows: list[str]) -> str:
    return "".join(r + "\n" for r in rows) + "\n"


def _row(i: int | str, form: str, head: int | str, rel: str = "dep") -> str:
    return f"{i}\t{form}\t{form.lower()}\tX\t_\t_\t{head}\t{rel}\t_\t_"


def _error(text: str, **kw) -> CoNLLUError:
    with pytest.raises(CoNLLUError) as info:
        read_conllu(io.StringIO(text), name="in.conllu", **kw)
    return info.value


# ---------------------------------------------------------------------------- round trip


@pytest.mark.skipif(not SHARED_FILES, reason="shared UD treebanks not available (../shared beside the checkout)")
@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_shared_files_round_trip_byte_for_byte(path: Path, tmp_path: Path) -> None:
    sentences = read_conllu(path)
    assert sentences, path
    out = tmp_path / "out.conllu"
    assert write_conllu(sentences, out) == len(sentences)
    assert out.read_bytes() == path.read_bytes()
    # replacing the heads/deprels by themselves changes nothing either
    same = [s.with_predictions(s.heads, s.deprels) for s in sentences[:50]]
    assert "".join(s.to_conllu() for s in same) == "".join(s.to_conllu() for s in sentences[:50])


@pytest.mark.skipif(not (SHARED / "ud-samples/UD_Czech-PDT").is_dir(), reason="shared PDT sample not available")
def test_empty_nodes_are_kept_but_not_words() -> None:
    sentences = read_conllu(SHARED / "ud-samples/UD_Czech-PDT/cs_pdt-ud-train-c.conllu")
    with_empty = [s for s in sentences if any(isinstance(t["id"], tuple) for t in s.tokens)]
    assert with_empty
    s = with_empty[0]
    assert len(s.words) == sum(1 for t in s.tokens if isinstance(t["id"], int)) < len(s.tokens)


def test_rich_sentence_views_and_round_trip() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (s,) = read_conllu(io.StringIO(RICH), name="rich.conllu")
    assert s.words == ["Do", "n't", "stop", "now"]
    assert s.heads == [3, 3, 0, 3]
    assert s.deprels == ["aux", "advmod", "root", "advmod:tmod"]
    assert s.upos == ["AUX", "PART", "VERB", "ADV"]
    assert len(s) == 4
    assert (s.source, s.line, s.sent_id, s.text) == ("rich.conllu", 1, "s1", "Don't stop now")
    assert len(s.tokens) == 6  # MWT line and empty node kept
    assert s.tokens[0]["id"] == (1, "-", 2)
    assert s.tokens[4]["id"] == (3, ".", 1)
    assert s.tokens[1]["feats"] == {"Mood": "Ind", "Tense": "Pres"}
    assert s.tokens[1]["deps"] == [("aux", 3)]
    # not representable as a dict without loss -> kept verbatim
    assert s.tokens[3]["misc"] == "Gloss=halt|Dup=1|Dup=2"
    assert s.tokens[4]["misc"] == "Key="
    assert s.to_conllu() == RICH


def test_line_numbers_of_later_sentences() -> None:
    text = "\n\n" + SIMPLE + SIMPLE.replace("= a", "= b") + "\n\n" + SIMPLE.replace("= a", "= c")
    sentences = read_conllu(io.StringIO(text), name="x")
    assert [s.line for s in sentences] == [3, 7, 13]
    assert [s.sent_id for s in sentences] == ["a", "b", "c"]


def test_with_predictions_changes_only_head_and_deprel() -> None:
    (s,) = read_conllu(io.StringIO(RICH))
    new = s.with_predictions([2, 0, 2, 3], ["nsubj", "root", "obj", "advmod"])
    assert new.heads == [2, 0, 2, 3]
    assert new.deprels == ["nsubj", "root", "obj", "advmod"]
    assert s.heads == [3, 3, 0, 3]  # original untouched
    old_lines, new_lines = s.to_conllu().split("\n"), new.to_conllu().split("\n")
    assert len(old_lines) == len(new_lines)
    for old, line in zip(old_lines, new_lines, strict=True):
        a, b = old.split("\t"), line.split("\t")
        if len(a) == 10 and a[0].isdigit():
            assert a[:6] + a[8:] == b[:6] + b[8:]  # DEPS and MISC untouched
        else:
            assert old == line
    assert "4\tnow\tnow\tADV\tRB\t_\t3\tadvmod\t3:advmod\tSpaceAfter=No" in new_lines
    assert "1\tDo\tdo\tAUX\tVBP\tMood=Ind|Tense=Pres\t2\tnsubj\t3:aux\t_" in new_lines


def test_with_predictions_validates() -> None:
    (s,) = read_conllu(io.StringIO(RICH))
    with pytest.raises(ValueError, match="4 words"):
        s.with_predictions([0, 1], ["root", "dep"])
    with pytest.raises(ValueError, match="out of range"):
        s.with_predictions([0, 1, 1, 9], ["root"] * 4)
    with pytest.raises(ValueError, match="deprel"):
        s.with_predictions([0, 1, 1, 1], ["root", "a b", "x", "y"])


def test_tag_columns_read_as_text_and_predictions_fill_only_empty_cells() -> None:
    (s,) = read_conllu(io.StringIO(RICH))
    assert s.column("xpos") == ["VBP", "RB", "VB", "RB"]
    assert s.column("feats") == ["Mood=Ind|Tense=Pres", "_", "VerbForm=Inf", "_"]
    assert s.column("lemma")[:3] == ["do", "not", "stop"]
    with pytest.raises(ValueError, match="not a tag column"):
        s.column("misc")
    tags = {
        "upos": ["X", "X", "X", "X"],
        "feats": ["Number=Sing", "Polarity=Neg", "Mood=Imp|VerbForm=Fin", "Degree=Pos"],
    }
    new = s.with_predictions(s.heads, s.deprels, tags=tags)
    assert new.upos == s.upos  # every UPOS was annotated: kept
    assert new.column("feats") == ["Mood=Ind|Tense=Pres", "Polarity=Neg", "VerbForm=Inf", "Degree=Pos"]
    assert "2\tn't\tnot\tPART\tRB\tPolarity=Neg\t3\tadvmod\t3:advmod\t_" in new.to_conllu()
    with pytest.raises(ValueError, match="4 words"):
        s.with_predictions(s.heads, s.deprels, tags={"xpos": ["NN"]})
    with pytest.raises(ValueError, match="not a tag column"):
        s.with_predictions(s.heads, s.deprels, tags={"misc": ["a", "b", "c", "d"]})


def test_changed_metadata_regenerates_comments() -> None:
    (s,) = read_conllu(io.StringIO(RICH))
    s.tokens.metadata["sent_id"] = "new"
    assert s.to_conllu().startswith("# newdoc id = d1\n# sent_id = new\n# text = Don't stop now\n1-2\t")


def test_from_words() -> None:
    s = Sentence.from_words(["Hi", "!"], space_after=[False, True], sent_id="7", text="Hi!")
    assert s.to_conllu() == (
        "# sent_id = 7\n# text = Hi!\n1\tHi\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n2\t!\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
    )
    assert s.heads is None and s.deprels is None
    (back,) = read_conllu(io.StringIO(s.to_conllu()), require_heads=False)
    assert back.to_conllu() == s.to_conllu()
    with pytest.raises(ValueError):
        Sentence.from_words([])
    with pytest.raises(ValueError):
        Sentence.from_words(["a\tb"])


# ---------------------------------------------------------------------------- validation


def test_error_format_and_pickle() -> None:
    err = CoNLLUError("f.conllu", 12, "bad thing")
    assert str(err) == "f.conllu:12: bad thing"
    assert (err.path, err.line, err.message) == ("f.conllu", 12, "bad thing")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)
    assert isinstance(NoSentencesError("f"), CoNLLUError)
    assert str(NoSentencesError("f")) == "f: no sentences found (the input is empty)"


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ([_row(1, "a", 0, "root"), "2\tb\tb\tX\t_\t_\t1\tdep\t_"], 2, "expected 10 tab-separated columns, found 9"),
        ([_row(1, "a", 0, "root"), "2  b  b  X  _  _  1  dep  _  _"], 2, "separated by tabs"),
        ([_row(1, "a", 0, "root"), _row(2, "b", "x")], 2, "HEAD must be an integer"),
        ([_row(1, "a", 0, "root"), _row(2, "b", 3)], 2, "HEAD 3 out of range 0..2"),
        ([_row(1, "a", 0, "root"), _row(2, "b", -1)], 2, "HEAD -1 out of range"),
        ([_row(1, "a", 0, "root"), _row(3, "b", 1)], 2, "word ID 3 follows 1"),
        ([_row(2, "a", 0, "root")], 1, "word ID 2 follows 0"),
        ([_row(1, "a", 0, "root"), _row(2, "b", 3), _row(3, "c", 2)], 2, "cycle in the head graph: 2 -> 3 -> 2"),
        ([_row(1, "a", 1), _row(2, "b", 0, "root")], 1, "cycle in the head graph: 1 -> 1"),
        ([_row(1, "a", 2), _row(2, "b", 1)], 1, "no word is attached to the root"),
        ([_row(1, "a", 0, "root"), _row(2, "b", "_")], 2, "word 2 has no HEAD"),
        (["3-2\tab\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "a", 0, "root")], 1, "malformed multiword token range"),
        (["1-1\tab\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "a", 0, "root")], 1, "malformed multiword token range"),
        ([_row(1, "a", 0, "root"), "1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_", _row(2, "b", 1)], 2, "must come right before"),
        (["1-3\tab\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "a", 0, "root"), _row(2, "b", 1)], 1, "beyond the last word"),
        (
            ["1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "a", 0, "root"), "2-3\tbc\t_\t_\t_\t_\t_\t_\t_\t_"],
            3,
            "overlaps",
        ),
        ([_row(1, "a", 0, "root"), "1.2\tx\t_\t_\t_\t_\t_\t_\t_\t_"], 2, "empty node 1.2 out of place"),
        ([_row("1.0", "a", 0, "root")], 1, "invalid ID"),
        ([_row(1, "a", 0, "root"), "2\tb\tb\tX\t_\t\t1\tdep\t_\t_"], 2, "empty FEATS column"),
        ([_row(1, "a", 0, "root"), "# late comment"], 2, "comment line after token lines"),
        (["# only a comment"], 1, "no token lines"),
    ],
)
def test_validation_errors_name_file_and_line(rows: list[str], line: int, fragment: str) -> None:
    text = SIMPLE + _sentence_text(rows)  # SIMPLE takes 4 lines: row k (1-based) is on line 4 + k
    err = _error(text)
    assert err.path == "in.conllu"
    assert err.line == line + 4, str(err)
    assert fragment in err.message, str(err)
    assert str(err).startswith(f"in.conllu:{line + 4}: ")


def test_heads_may_be_missing_for_input_to_parse() -> None:
    text = _sentence_text([_row(1, "a", "_", "_"), _row(2, "b", "_", "_")])
    (s,) = read_conllu(io.StringIO(text), require_heads=False)
    assert s.words == ["a", "b"] and s.heads is None and s.deprels is None
    assert s.to_conllu() == text
    with pytest.raises(CoNLLUError, match="has no HEAD"):
        read_conllu(io.StringIO(text))


def test_multiple_roots_warn_with_location() -> None:
    text = SIMPLE + _sentence_text([_row(1, "a", 0, "root"), _row(2, "b", 0, "root")])
    with pytest.warns(MultipleRootsWarning, match=r"in\.conllu:5: .*2 roots"):
        sentences = read_conllu(io.StringIO(text), name="in.conllu")
    assert len(sentences) == 2  # kept, not dropped


def test_bad_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.conllu"
    path.write_bytes(SIMPLE.encode() + b"1\tca\xe7a\tx\tX\t_\t_\t0\troot\t_\t_\n\n")
    with pytest.raises(CoNLLUError) as info:
        read_conllu(path)
    assert info.value.line == 5 and "invalid UTF-8" in info.value.message
    assert str(info.value).startswith(f"{path}:5: ")
    with pytest.raises(CoNLLUError, match="invalid UTF-8"):
        read_conllu(io.BytesIO(path.read_bytes()), name="stdin")
    # text stream with undecodable bytes smuggled in as surrogates
    with pytest.raises(CoNLLUError, match=":5: invalid UTF-8"):
        read_conllu(io.StringIO(path.read_bytes().decode("utf-8", "surrogateescape")), name="t")


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + SIMPLE.replace("\n", "\r\n").encode())
    (s,) = read_conllu(path)
    assert s.sent_id == "a" and s.words == ["Hi", "!"]
    assert s.to_conllu() == SIMPLE


def test_empty_input() -> None:
    assert read_conllu(io.StringIO("")) == []
    assert read_conllu(io.StringIO("\n\n  \n")) == []
    with pytest.raises(NoSentencesError, match="^empty.conllu: no sentences"):
        read_conllu(io.StringIO(""), name="empty.conllu", allow_empty=False)


def test_iter_conllu_streams() -> None:
    consumed = 0

    def lines():
        nonlocal consumed
        for line in (SIMPLE * 1000).splitlines(keepends=True):
            consumed += 1
            yield line

    it = iter_conllu(lines(), name="gen")
    first = next(it)
    assert first.words == ["Hi", "!"] and first.source == "gen"
    assert consumed <= 5  # read only up to the first blank line
    assert sum(1 for _ in it) == 999


def test_write_conllu_streams_and_atomicity(tmp_path: Path) -> None:
    sentences = read_conllu(io.StringIO(SIMPLE + RICH))
    buf = io.StringIO()
    assert write_conllu(sentences, buf) == 2
    assert buf.getvalue() == SIMPLE + RICH
    raw = io.BytesIO()
    write_conllu(sentences, raw)
    assert raw.getvalue() == (SIMPLE + RICH).encode()

    out = tmp_path / "out.conllu"
    out.write_text("previous")

    def failing():
        yield sentences[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_conllu(failing(), out)
    assert out.read_text() == "previous"
    assert os.listdir(tmp_path) == ["out.conllu"]  # no temp file left behind
    write_conllu(sentences, out)
    assert out.read_text() == SIMPLE + RICH


# ---------------------------------------------------------------------------- io_utils


def test_atomic_writers(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    with atomic_output(target, "w") as fh:
        fh.write("a\nb")
        assert target.read_bytes() == b"\x00\x01"  # not visible before the block ends
    assert target.read_text() == "a\nb"
    mode = target.stat().st_mode & 0o777
    assert mode & 0o600 == 0o600
    with pytest.raises(ValueError):
        with atomic_output(target, "a"):
            pass
    with pytest.raises(ZeroDivisionError):
        with atomic_output(target, "wb") as fh:
            fh.write(b"partial")
            1 / 0  # noqa: B018
    assert target.read_text() == "a\nb"
    assert sorted(os.listdir(target.parent)) == ["f.txt"]


def test_fast_id_and_head_reading_agrees_with_conllu():
    from conllu.exceptions import ParseException
    from conllu.parser import parse_id_value, parse_int_value

    from unnparse.conllu.fields import parse_id as _parse_id
    from unnparse.conllu.fields import parse_int as _parse_int

    def outcome(func, value):
        try:
            return func(value)
        except ParseException:
            return "error"

    values = ["0", "1", "12", "01", "00", "-1", "-0", "1-2", "2-1", "1.1", "0.1", "1.0", "_", "", "١", "²", "1a", " 1"]
    for value in values + ["+1", "10-12", "3.12", "7", "99999"]:
        assert outcome(_parse_id, value) == outcome(parse_id_value, value), value
        assert outcome(_parse_int, value) == outcome(parse_int_value, value), value
