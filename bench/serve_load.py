"""Load on `unnparse serve`: many small concurrent requests, with shared batches and one request at a time.

Builds ``--requests`` requests of 1-3 consecutive sentences of a UD test file (their ``# text``, raw text in,
CoNLL-U out), computes what ``unnparse parse`` writes for each (its library call, in this process), then for each
mode starts ``unnparse serve`` on a free loopback port and sends all requests from ``--clients`` concurrent clients
(one keep-alive connection each). Every answer is compared byte for byte with the command line's; the report gives
the answers that differ (and of those, the ones whose parse differs, not only a rounded probability), the ones lost
(none expected), requests and sentences per second, p50/p99 latency and the server's peak resident memory. Modes:
``batched`` (the defaults: a 10 ms window, shared batches) and ``single`` (``--batch-requests 1 --batch-window-ms
0``: one request at a time, as a server without batching works). Writes the ``serve-load`` section of BENCHMARKS.md
(not with ``--no-report``).

    .venv/bin/python bench/serve_load.py --model models/UD_English-ParTUT --clients 16 --requests 2000 --threads 2
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "ud" / "UD_English-ParTUT" / "en_partut-ud-test.conllu"
MODES = {"batched": [], "single": ["--batch-requests", "1", "--batch-window-ms", "0"]}


def build_requests(source: Path, count: int, seed: int) -> list[str]:
    """``count`` texts of 1-3 consecutive sentences of ``source``."""
    from unnparse.conllu import read_conllu

    texts = [s.text or " ".join(s.words) for s in read_conllu(source)]
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        size = rng.randint(1, 3)
        start = rng.randrange(0, len(texts) - size)
        requests.append(" ".join(texts[start : start + size]) + "\n")
    return requests


def expected_outputs(
    model: Path, requests: list[str], marginals: bool, threads: int, tokenizer: str = "auto"
) -> list[str]:
    """What `unnparse parse` writes for each request (the same library call the command makes)."""
    import torch

    from unnparse.parser.loading import load
    from unnparse.parser.parse_jobs import ParseOptions, parse_stream

    torch.set_num_threads(threads)
    parser = load(model)
    options = ParseOptions(marginals=marginals, tokenizer=tokenizer)
    outputs = []
    for text in requests:
        out = io.StringIO()
        parse_stream(parser, io.BytesIO(text.encode()), out, options)
        outputs.append(out.getvalue())
    return outputs


def start_server(model: Path, threads: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "unnparse", "serve", "--model", f"bench={model}", "--port", "0"]
    command += ["--threads", str(threads), "--queue-mb", "1024", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening on " in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, line.split("listening on ")[1].split()[0]
    raise SystemExit(f"the service did not start (exit {proc.wait()})")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_load(
    address: str, requests: list[str], clients: int, marginals: bool, tokenizer: str = "auto"
) -> tuple[list, float]:
    """Send every request (``clients`` at a time, one connection each); (status, body, seconds) per request."""
    url = urlsplit(address)
    query = f"/parse?tokenizer={tokenizer}" + ("&marginals=true" if marginals else "")
    results: list = [None] * len(requests)
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def client() -> None:
        conn = HTTPConnection(url.hostname, url.port, timeout=120)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", query, body=requests[i].encode(), headers={"Content-Type": "text/plain"})
                response = conn.getresponse()
                results[i] = (response.status, response.read().decode(), time.perf_counter() - t0)
            except OSError as err:
                results[i] = (0, str(err), time.perf_counter() - t0)
                conn = HTTPConnection(url.hostname, url.port, timeout=120)
        conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    return results, time.perf_counter() - t0


def parse_part(conllu: str) -> list[str]:
    """The lines of a CoNLL-U answer without the probabilities (to tell a changed parse from a changed digit)."""
    return [line.split("ArcProb=")[0] for line in conllu.splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    ap.add_argument("--marginals", action="store_true", help="ask for the arc probabilities (ArcProb)")
    ap.add_argument("--tokenizer", choices=["auto", "rules"], default="auto", help="the requests' tokenizer option")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--batched-options",
        default="",
        help="more `unnparse serve` options for the batched mode, e.g. '--batch-window-ms 5'",
    )
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()

    requests = build_requests(args.source, args.requests, args.seed)
    sentences_sent = None
    t0 = time.perf_counter()
    expected = expected_outputs(args.model, requests, args.marginals, args.threads, args.tokenizer)
    cli_seconds = time.perf_counter() - t0
    sentences_sent = sum(out.count("# sent_id") for out in expected)
    print(f"{len(requests)} requests, {sentences_sent} sentences; expected outputs in {cli_seconds:.1f} s", flush=True)
    rows = {}
    for mode in args.modes:
        extra = MODES[mode] + (shlex.split(args.batched_options) if mode == "batched" else [])
        proc, address = start_server(args.model, args.threads, extra)
        try:
            results, seconds = run_load(address, requests, args.clients, args.marginals, args.tokenizer)
            rss = peak_rss_mb(proc.pid)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        lost = sum(1 for r in results if r is None or r[0] != 200)
        differ = [i for i, r in enumerate(results) if r is not None and r[0] == 200 and r[1] != expected[i]]
        parse_differ = [i for i in differ if parse_part(results[i][1]) != parse_part(expected[i])]
        latencies = sorted(r[2] for r in results if r is not None)
        rows[mode] = {
            "requests_per_s": len(requests) / seconds,
            "sentences_per_s": sentences_sent / seconds,
            "seconds": seconds,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "peak_rss_mb": rss,
            "lost": lost,
            "differ": len(differ),
            "parse_differ": len(parse_differ),
            "exit_code": code,
        }
        print(mode, json.dumps(rows[mode]), flush=True)
    table = (
        "| mode | requests/s | sentences/s | p50 latency ms | p99 latency ms | server peak RSS MB | answers not 200 "
        "| answers ≠ CLI (parse ≠) | exit after SIGTERM |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    for mode, r in rows.items():
        table += (
            f"| {mode} | {r['requests_per_s']:.1f} | {r['sentences_per_s']:.1f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['lost']} | {r['differ']} ({r['parse_differ']}) | "
            f"{r['exit_code']} |\n"
        )
    ratio = ""
    if "batched" in rows and "single" in rows:
        speedup = rows["batched"]["requests_per_s"] / rows["single"]["requests_per_s"]
        ratio = f"\nThroughput with shared batches / one request at a time: **{speedup:.2f}×** (same run).\n"
    body = (
        f"{measured_on(f'server {args.threads} torch threads')}: `unnparse serve` on loopback, model "
        f"`{args.model.name}`, {args.requests:,} requests of 1-3 sentences of `{args.source.name}` (raw text in, "
        f"split by the {'rules' if args.tokenizer == 'rules' else 'model tokenizer when it has one, else the rules'}, "
        f"CoNLL-U out{', with ArcProb' if args.marginals else ''}; {sentences_sent:,} sentences) from "
        f"{args.clients} concurrent clients (threads in the benchmark's process, which shares the CPUs), "
        f"each answer compared byte for byte with `unnparse parse` on the same text.\n\n"
        f"Command: `{command_line()}`\n\n{table}{ratio}"
    )
    print(body)
    if not args.no_report:
        variant = f"{args.model.name}, tokenizer {args.tokenizer}" + (", with ArcProb" if args.marginals else "")
        section = "serve-load-" + "-".join(variant.replace(",", "").split())
        write_section(section, f"Parsing service under load ({variant})", body)


if __name__ == "__main__":
    main()
