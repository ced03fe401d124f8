"""`unnparse serve`: the API, shared batches that answer as `unnparse parse` does, the limits, and shutdown."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tests.parser_fixtures import conllu_text, write_treebank  # noqa: E402
from unnparse.cli.parser_app import app as cli_app  # noqa: E402
from unnparse.conllu.reader import iter_conllu  # noqa: E402
from unnparse.conllu.sentence import Sentence  # noqa: E402
from unnparse.parser.loading import load  # noqa: E402
from unnparse.parser.parse_jobs import ParseOptions, parse_stream  # noqa: E402
from unnparse.service.app import ServiceSettings, create_app  # noqa: E402
from unnparse.service.batcher import BatchKey, ParseBatcher, QueueFullError, ShuttingDownError  # noqa: E402

TEXT = "The old man saw a dog. She reads the letter that he wrote.\n\nA cat sleeps."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    write_treebank(root / "data", n_train=40, n_dev=8)
    model = root / "UD_Toy-Test"
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data"), "--output", str(model)]
    args += ["--epochs", "2", "--hidden", "32", "--rel-hidden", "16", "--lstm-hidden", "32", "--lstm-layers", "1"]
    args += ["--device", "cpu", "--no-progress", "--threads", "1", "--tokenizer-steps", "0"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return model


@pytest.fixture(scope="module")
def parser(model_dir):
    return load(model_dir)


def cli_output(parser, data: bytes, **options) -> str:
    """What `unnparse parse` writes for ``data`` (its library call, the same one the command makes)."""
    out = io.StringIO()
    parse_stream(parser, io.BytesIO(data), out, ParseOptions(**options))
    return out.getvalue()


def client_for(parser, **settings) -> TestClient:
    return TestClient(create_app({"toy": parser, "other": parser}, ServiceSettings(**settings)))


@pytest.mark.parametrize("fmt", ["conllu", "json", "tree", "svg", "html"])
def test_a_body_is_answered_with_what_parse_writes(parser, fmt):
    with client_for(parser) as client:
        response = client.post(f"/parse?output_format={fmt}", content=TEXT.encode())
    assert response.status_code == 200, response.text
    assert response.text == cli_output(parser, TEXT.encode(), output_format=fmt)
    assert "sleeps" in response.text and "letter" in response.text


def test_conllu_and_tokenized_input_with_options(parser):
    gold = conllu_text(5, seed=3).encode()
    with client_for(parser) as client:
        response = client.post("/parse?input_format=conllu&clear_tags=true&marginals=true", content=gold)
        tokenized = client.post("/parse?input_format=tokenized&model=other", content=b"Dogs bark .\nA cat sleeps .\n")
    assert response.text == cli_output(parser, gold, input_format="conllu", clear_tags=True, marginals=True)
    assert "ArcProb=" in response.text
    assert tokenized.text == cli_output(parser, b"Dogs bark .\nA cat sleeps .\n", input_format="tokenized")


def test_a_json_request_gets_the_output_counts_other_formats_and_warnings(parser):
    data = conllu_text(2, seed=1)
    request = {"input": data, "input_format": "conllu", "output_format": "json", "also": ["conllu", "svg"]}
    with client_for(parser) as client:
        answer = client.post("/parse", json={**request, "max_words": 3}).json()
        as_text = client.post("/parse", json={"input": data}).json()
    assert answer["model"] == "toy" and answer["sentences"] == 2
    options = {"input_format": "conllu", "max_words": 3}
    assert answer["output"] == cli_output(parser, data.encode(), output_format="json", **options)
    assert answer["outputs"]["conllu"] == cli_output(parser, data.encode(), **options)
    assert answer["outputs"]["svg"].count("<svg") == 2
    assert answer["words"] == sum(len(s) for s in iter_conllu(io.BytesIO(data.encode()), name="x"))
    assert len(answer["warnings"]) == 2 and all(
        w.startswith("<request>:") and "pieces" in w for w in answer["warnings"]
    )
    assert any("looks like CoNLL-U" in w for w in as_text["warnings"])


def test_bad_requests_get_the_one_line_message_of_the_command_line(parser):
    with client_for(parser, max_request_bytes=2000) as client:
        bad = client.post("/parse?input_format=conllu", content=b"# sent_id = 1\n1\tDogs\n\n")
        unknown = client.post("/parse?model=nope", content=b"Dogs bark.")
        option = client.post("/parse?output_format=xml", content=b"Dogs bark.")
        json_bad = client.post("/parse", json={"input": "x", "marginals": "maybe"})
        json_extra = client.post("/parse", json={"input": "x", "colour": "red"})
        not_json = client.post("/parse", content=b"{", headers={"Content-Type": "application/json"})
        big = client.post("/parse", content=b"word " * 1000)

        def chunks():  # no Content-Length: the limit holds on the bytes read
            for _ in range(100):
                yield b"word " * 10

        streamed = client.post("/parse", content=chunks())
        not_utf8 = client.post("/parse", content=b"caf\xe9 bar.")
    assert (bad.status_code, bad.json()) == (400, {"detail": "<request>:2: expected 10 tab-separated columns, found 2"})
    assert unknown.status_code == 404 and "'toy', 'other'" in unknown.json()["detail"]
    assert option.status_code == 422 and option.json()["detail"].startswith("output_format: ")
    assert json_bad.status_code == 422 and json_bad.json()["detail"].startswith("marginals: ")
    assert json_extra.status_code == 422 and "colour" in json_extra.json()["detail"]
    assert not_json.status_code == 422
    assert big.status_code == 413 and "5,000 bytes" in big.json()["detail"]
    assert streamed.status_code == 413
    assert not_utf8.status_code == 400 and not_utf8.json()["detail"].startswith("<request>")
    for response in (bad, unknown, option, json_bad, big, not_utf8):
        assert "\n" not in response.json()["detail"]


def test_models_health_page_and_schema(parser):
    with client_for(parser) as client:
        models = client.get("/models").json()
        health = client.get("/health").json()
        page = client.get("/")
        schema = client.get("/openapi.json").json()
    assert [m["name"] for m in models] == ["toy", "other"] and models[0]["default"] and not models[1]["default"]
    assert models[0]["treebank"] == "UD_Toy-Test" and models[0]["k"] == 1 and "las" in models[0]["dev_scores"]
    assert models[0]["encoder"] == "scratch (BiLSTM)" and "upos" in models[0]["predicts"]
    assert health["status"] == "ok" and health["models"] == ["toy", "other"]
    assert page.status_code == 200 and 'id="input"' in page.text and 'id="trees"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    assert "/parse" in schema["paths"] and "application/json" in json.dumps(schema["paths"]["/parse"])


def _jobs(parser, count: int) -> list[list]:
    data = conllu_text(count * 2, seed=11).encode()
    sentences = [s.without_tags(("upos", "xpos", "feats", "lemma")) for s in iter_conllu(io.BytesIO(data), name="x")]
    return [sentences[i : i + 1 + i % 3] for i in range(count)]


KEY = BatchKey("toy", False, 1000)


def submit(batcher: ParseBatcher, job: list, key: BatchKey = KEY):
    """Queue ``job``'s sentences; the future gives their parses (its size: its words)."""
    return batcher.submit(key, lambda: list(job), lambda parses: parses, sum(len(s) for s in job))


def test_concurrent_requests_share_batches_and_get_their_own_parses(parser):
    jobs = _jobs(parser, 24)
    alone = [list(parser.predict(job)) for job in jobs]
    batcher = ParseBatcher({"toy": parser}, window=0.2)
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = list(pool.map(lambda job: submit(batcher, job), jobs))
            results = [f.result(timeout=60) for f in futures]
        stats = batcher.stats
    finally:
        assert batcher.close(timeout=30)
    assert stats.requests == 24 and stats.batches < 24 / 2  # shared
    assert stats.queued_requests == 0 and stats.queued_bytes == 0
    for got, want, job in zip(results, alone, jobs, strict=True):
        assert [p.sentence.to_conllu() for p in got] == [p.sentence.to_conllu() for p in want]
        assert [p.sentence.words for p in got] == [s.words for s in job]


def test_a_large_request_is_taken_in_slices_between_small_ones(parser):
    big = [s for job in _jobs(parser, 20) for s in job]
    small = _jobs(parser, 3)
    batcher = ParseBatcher({"toy": parser}, window=0.3, gather_words=60)
    order: list[str] = []
    try:
        f_big = submit(batcher, big)
        f_big.add_done_callback(lambda _f: order.append("big"))
        f_small = [submit(batcher, job) for job in small]
        for f in f_small:
            f.add_done_callback(lambda _f: order.append("small"))
        got_big = f_big.result(timeout=60)
        got_small = [f.result(timeout=60) for f in f_small]
    finally:
        batcher.close(timeout=30)
    assert order.index("big") == len(order) - 1  # the small requests did not wait for all of it
    assert [p.sentence.to_conllu() for p in got_big] == [p.sentence.to_conllu() for p in parser.predict(big)]
    for got, job in zip(got_small, small, strict=True):
        assert [p.sentence.words for p in got] == [s.words for s in job]


def test_one_failing_request_does_not_fail_the_others_in_its_batch(parser, monkeypatch):
    jobs = _jobs(parser, 4)
    poisoned = [Sentence.from_words(["BOOM", *jobs[2][0].words], source="x"), *jobs[2][1:]]
    real = parser.predict

    def predict(sentences, **kwargs):
        sentences = list(sentences)
        if any("BOOM" in s.words for s in sentences):
            raise RuntimeError("cannot parse BOOM")
        return real(sentences, **kwargs)

    monkeypatch.setattr(parser, "predict", predict)
    batcher = ParseBatcher({"toy": parser}, window=0.3)
    try:
        futures = [submit(batcher, job) for job in (jobs[0], jobs[1], poisoned)]
        assert len(futures[0].result(timeout=60)) == len(jobs[0])
        assert len(futures[1].result(timeout=60)) == len(jobs[1])
        with pytest.raises(RuntimeError, match="BOOM"):
            futures[2].result(timeout=60)
        assert batcher.stats.queued_requests == 0
    finally:
        batcher.close(timeout=30)


def test_the_queue_is_bounded_and_closing_finishes_what_it_holds(parser):
    jobs = _jobs(parser, 3)
    batcher = ParseBatcher({"toy": parser}, window=5.0, queue_bytes=sum(len(s) for s in jobs[0]) + 1)
    first = submit(batcher, jobs[0])  # waits out the window in the queue
    with pytest.raises(QueueFullError, match="busy"):
        submit(batcher, jobs[1])
    with pytest.raises(KeyError):
        submit(batcher, jobs[1], BatchKey("nope", False, 1000))
    assert batcher.close(timeout=30)  # does not wait the window out, and parses what was queued
    assert len(first.result(timeout=1)) == len(jobs[0])
    with pytest.raises(ShuttingDownError):
        submit(batcher, jobs[1])


def test_unreadable_input_and_a_failing_answer_fail_their_request_only(parser):
    jobs = _jobs(parser, 3)

    def unreadable():
        raise ValueError("<request>:1: not CoNLL-U")

    batcher = ParseBatcher({"toy": parser}, window=0.3)
    try:
        bad_read = batcher.submit(KEY, unreadable, lambda parses: parses, 10)
        good = submit(batcher, jobs[0])
        bad_finish = batcher.submit(KEY, lambda: jobs[1], lambda parses: 1 / 0, 10)
        empty = batcher.submit(KEY, list, lambda parses: len(parses), 0)
        with pytest.raises(ValueError, match="not CoNLL-U"):
            bad_read.result(timeout=60)
        with pytest.raises(ZeroDivisionError):
            bad_finish.result(timeout=60)
        assert len(good.result(timeout=60)) == len(jobs[0]) and empty.result(timeout=60) == 0
        assert batcher.stats.requests == 4 and batcher.stats.queued_bytes == 0
    finally:
        batcher.close(timeout=30)


def test_a_full_queue_answers_503_with_retry_after(parser):
    with client_for(parser, batch_window=1.5, queue_bytes=10) as client:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/parse", content=b"one two three four five six seven eight.")
            time.sleep(0.5)
            second = client.post("/parse", content=b"Dogs bark.")
            assert first.result().status_code == 200
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"
    assert "busy" in second.json()["detail"]


def start_service(model_dir: Path, *args: str, name: str = "toy") -> tuple[subprocess.Popen, str]:
    """`python -m unnparse serve` on a free port; returns the process and its address once it listens."""
    command = [sys.executable, "-m", "unnparse", "serve", "--model", f"{name}={model_dir}", "--port", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*command, "--threads", "1", *args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on " in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, line.split("listening on ")[1].split()[0]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the service did not start: {proc.stderr.read()}")


def post(address: str, body: bytes, query: str = "") -> tuple[int, str]:
    request = urllib.request.Request(f"{address}/parse{query}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_command_serves_what_the_parse_command_writes(model_dir):
    proc, address = start_service(model_dir)
    try:
        status, body = post(address, TEXT.encode(), "?output_format=tree")
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    command = [sys.executable, "-m", "unnparse", "parse", "--model", str(model_dir), "--output-format", "tree"]
    cli = subprocess.run([*command, "--threads", "1"], input=TEXT.encode(), capture_output=True, check=True)
    assert status == 200 and body == cli.stdout.decode()


def test_sigterm_answers_the_requests_in_flight_then_exits(model_dir):
    proc, address = start_service(model_dir, "--batch-window-ms", "1500")
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, address, f"Dogs bark {i} times.".encode()) for i in range(4)]
            time.sleep(0.7)  # the requests wait in the batch window
            proc.send_signal(signal.SIGTERM)
            answers = [f.result(timeout=60) for f in futures]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert [status for status, _ in answers] == [200] * 4
    assert all(f"\t{i}\t" in body for i, (_, body) in enumerate(answers))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{address}/health", timeout=5)


def test_serve_refuses_bad_model_names_and_directories(tmp_path):
    runner = CliRunner()
    bad_name = runner.invoke(cli_app, ["serve", "--model", "a b=x", "--port", "0"])
    missing = runner.invoke(cli_app, ["serve", "--model", f"m={tmp_path / 'none'}", "--port", "0"])
    assert bad_name.exit_code == 1 and "NAME=DIR" in bad_name.output
    assert missing.exit_code == 1 and "none" in missing.output


def test_under_load_every_answer_is_the_command_lines_and_none_is_lost(model_dir, parser):
    """16 concurrent clients, 400 requests of 1-3 sentences: all answered, each as `unnparse parse` answers it."""
    rng = random.Random(5)
    texts = [s.text for s in iter_conllu(io.BytesIO(conllu_text(60, seed=9).encode()), name="x")]
    requests = []
    for _ in range(400):
        start = rng.randrange(0, len(texts) - 3)
        requests.append(" ".join(texts[start : start + rng.randint(1, 3)]) + "\n")
    expected = [cli_output(parser, text.encode()) for text in requests]
    proc, address = start_service(model_dir)
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda text: post(address, text.encode()), requests, timeout=240))
        with urllib.request.urlopen(f"{address}/health", timeout=30) as response:
            health = json.loads(response.read())
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    assert [status for status, _ in answers] == [200] * len(requests)
    assert [body for _, body in answers] == expected
    assert health["parsed"]["requests"] == 400 and health["parsed"]["batches"] < 400  # batches were shared
    assert health["queue"] == {"requests": 0, "bytes": 0, "max_bytes": 16 << 20}


def test_texts_read_together_are_labelled_by_the_trained_tokenizer_at_once(model_dir, monkeypatch):
    from unnparse.text.trained_tokenizer import train_tokenizer

    parser = load(model_dir)
    gold = list(iter_conllu(io.BytesIO(conllu_text(40, seed=4).encode()), name="x"))
    parser.tokenizer = train_tokenizer(gold, steps=5, seed=0)[0]
    texts = [s.text + "\n" for s in gold[:12]]
    expected = [cli_output(parser, t.encode()) for t in texts]
    calls: list[int] = []
    real = parser.tokenizer.labels_many
    monkeypatch.setattr(parser.tokenizer, "labels_many", lambda ps, **kw: calls.append(len(ps)) or real(ps, **kw))
    with TestClient(create_app({"toy": parser}, ServiceSettings(batch_window=0.5))) as client:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda t: client.post("/parse", content=t.encode()).text, texts))
    assert answers == expected
    assert max(calls) > 1 and len(calls) < len(texts)  # paragraphs of several requests labelled in one call
