"""Benchmark of :mod:`unnparse.structures` against torch-struct and ufal.chu_liu_edmonds.

Usage: ``.venv/bin/python bench/structures.py [--repeats R] [--no-write]``

Everything runs in one process on the same data: 1,000 random sentences (lengths uniform in
1..40, seed 0, scores standard normal x scale, float32, one padded batch).  Times are
medians over interleaved repeats (machine noise hits all methods alike; compare ratios).
The markdown table is printed and written into BENCHMARKS.md between the markers
``<!-- bench:structures:start -->`` and ``<!-- bench:structures:end -->``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from unnparse.structures import arc_marginals, max_spanning_tree
from unnparse.structures.brute_force import brute_force

ROOT = Path(__file__).resolve().parents[1]
BENCH_FILE = ROOT / "BENCHMARKS.md"
START, END = "<!-- bench:structures:start -->", "<!-- bench:structures:end -->"
B, N, SEED = 1000, 40, 0

try:  # optional comparisons
    from torch_struct import NonProjectiveDependencyCRF
except ImportError:  # pragma: no cover
    NonProjectiveDependencyCRF = None
try:
    import ufal.chu_liu_edmonds as ufal_cle
except ImportError:  # pragma: no cover
    ufal_cle = None


def make_batch(scale: float, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, N + 1, (B,), generator=g)
    scores = torch.randn(B, N + 1, N + 1, generator=g) * scale
    return scores, lengths


def to_torch_struct(scores: torch.Tensor) -> torch.Tensor:
    """Our ``[B, N+1, N+1]`` (ROOT = row 0) -> torch-struct's ``[B, N, N]`` (ROOT on the diagonal)."""
    ts = scores[:, 1:, 1:].clone()
    idx = torch.arange(ts.shape[1])
    ts[:, idx, idx] = scores[:, 0, 1:]
    return ts


def from_torch_struct(marg: torch.Tensor) -> torch.Tensor:
    n = marg.shape[1]
    out = torch.zeros(marg.shape[0], n + 1, n + 1, dtype=marg.dtype)
    out[:, 1:, 1:] = marg
    idx = torch.arange(n)
    out[:, 1:, 1:][:, idx, idx] = 0
    out[:, 0, 1:] = marg[:, idx, idx]
    return out


def ts_marginals(ts_scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NonProjectiveDependencyCRF(ts_scores, lengths, multiroot=False).marginals


def ts_argmax(ts_scores: torch.Tensor, lengths: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NonProjectiveDependencyCRF(ts_scores, lengths, multiroot=False).argmax


def laplacians(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Float64 single-root (Koo) Laplacians with identity padding: the input of the floor."""
    s = scores.double()
    mask = torch.arange(N + 1)[None, :] <= lengths[:, None]
    valid = mask[:, :, None] & mask[:, None, :]
    valid[:, :, 0] = False
    valid[:, torch.arange(N + 1), torch.arange(N + 1)] = False
    s = s.masked_fill(~valid, float("-inf"))
    W = torch.exp(s - s.amax(dim=1, keepdim=True).clamp_min(-1e300).nan_to_num(0.0))
    A = W[:, 1:, 1:]
    L = -A
    pad = (torch.arange(N)[None, :] >= lengths[:, None]).double()
    L.diagonal(dim1=-2, dim2=-1).add_(A.sum(1) + pad)
    L[:, 0, :] = torch.where(lengths[:, None] >= 1, W[:, 0, 1:], L[:, 0, :])
    return L


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Interleaved timing: every round runs every function once; medians in seconds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up (and numba compilation)
        f()
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def try_call(f: Callable[[], object]) -> str | None:
    """``None`` if ``f`` runs, else a short description of its exception."""
    try:
        f()
    except Exception as e:  # noqa: BLE001 - we report whatever breaks
        return f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    return None


def accuracy(scale: float, n_sent: int = 200) -> dict[str, tuple[float, float, int]]:
    """Max abs error of log Z and marginals vs brute force, n <= 6, float64 inputs."""
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(2, 7, (n_sent,), generator=g)
    scores = torch.randn(n_sent, 7, 7, generator=g, dtype=torch.float64) * scale
    refs = []
    for b, n in enumerate(lengths.tolist()):
        blk = scores[b, : n + 1, : n + 1].numpy().copy()
        blk[:, 0] = 0
        np.fill_diagonal(blk, 0)
        refs.append(brute_force(blk, True))
    out: dict[str, tuple[float, float, int]] = {}
    lz, mu = arc_marginals(scores, lengths)
    err_z = max(abs(lz[b].item() - r.log_partition) for b, r in enumerate(refs))
    err_m = max(
        float(np.abs(mu[b, : n + 1, : n + 1].numpy() - r.marginals).max())
        for b, (n, r) in enumerate(zip(lengths.tolist(), refs, strict=True))
    )
    out["unnparse arc_marginals"] = (err_z, err_m, 0)
    if NonProjectiveDependencyCRF is not None:
        ts = to_torch_struct(scores)
        err_z, err_m, fails = 0.0, 0.0, 0
        for b, n in enumerate(lengths.tolist()):  # per sentence: a singular one raises
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dist = NonProjectiveDependencyCRF(ts[b : b + 1], lengths[b : b + 1], multiroot=False)
                    m = from_torch_struct(dist.marginals)[0]
                    z = dist.partition[0].item()
            except Exception:  # noqa: BLE001
                fails += 1
                continue
            ez = abs(z - refs[b].log_partition)
            em = float(np.abs(m[: n + 1, : n + 1].numpy() - refs[b].marginals).max())
            if not (np.isfinite(ez) and np.isfinite(em)):
                fails += 1
                continue
            err_z, err_m = max(err_z, ez), max(err_m, em)
        out["torch-struct NonProjectiveDependencyCRF"] = (err_z, err_m, fails)
    return out


def fmt_ms(t: float | None) -> str:
    return "—" if t is None else f"{1000 * t:.1f}"


def sharp_summary(sharp: torch.Tensor, lengths: torch.Tensor) -> tuple[str, str]:
    """Notes for the scale-30 rows: our fallback count, torch-struct's broken sentences."""
    from unnparse.structures import matrix_tree as mt

    logw = mt.prepare_log_weights(sharp.double(), mt.arc_mask(lengths, N, sharp.device))
    ours = f"{int(mt._matrix_tree(logw, lengths, True)[2].sum())}/{B} sentences took the exact fallback"
    if NonProjectiveDependencyCRF is None:
        return ours, ""
    m = from_torch_struct(ts_marginals(to_torch_struct(sharp), lengths).double())
    words = torch.arange(N + 1)[None, :] <= lengths[:, None]
    words[:, 0] = False
    bad = ~torch.isfinite(m).all(dim=2).all(dim=1)
    bad |= ((m.sum(dim=1) - words.double()).abs() > 1e-3).any(dim=1) | (m.amin(dim=(1, 2)) < -1e-3)
    return ours, f"{int(bad.sum())}/{B} sentences with NaN/inf, negative or non-normalised marginals"


def run(repeats: int) -> str:
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch.manual_seed(SEED)
    scale = 2.0
    scores, lengths = make_batch(scale)
    sharp, _ = make_batch(30.0)
    ts_in, ts_sharp = to_torch_struct(scores), to_torch_struct(sharp)
    L = laplacians(scores, lengths)
    s_req = scores.clone().requires_grad_(True)

    def ours_grad() -> None:
        s_req.grad = None
        arc_marginals(s_req, lengths)[0].sum().backward()

    # (key, label, function, note): all timed together, interleaved, so ratios are meaningful
    marg: list[tuple[str, str, Callable[[], object], str]] = [
        (
            "ours",
            f"marginals: unnparse `arc_marginals` (single root), scale {scale:g}",
            lambda: arc_marginals(scores, lengths),
            "",
        ),
    ]
    if NonProjectiveDependencyCRF is not None:
        marg.append(
            (
                "ts",
                f"marginals: torch-struct `NonProjectiveDependencyCRF` (multiroot=False), scale {scale:g}",
                lambda: ts_marginals(ts_in, lengths),
                "float32 as given; no compat shims needed on this torch",
            )
        )
    marg += [
        (
            "floor",
            "floor: float64 `slogdet` + `inv` of the padded Laplacians",
            lambda: (torch.linalg.slogdet(L), torch.linalg.inv(L)),
            "linear algebra only",
        ),
        ("grad", "log Z + backward (gradient = marginals): unnparse", ours_grad, ""),
        ("ours30", "marginals: unnparse, scale 30", lambda: arc_marginals(sharp, lengths), ""),
    ]
    ts_err = None if NonProjectiveDependencyCRF is None else try_call(lambda: ts_marginals(ts_sharp, lengths))
    if NonProjectiveDependencyCRF is not None and ts_err is None:
        marg.append(("ts30", "marginals: torch-struct, scale 30", lambda: ts_marginals(ts_sharp, lengths), ""))
    t = median_times({k: f for k, _, f, _ in marg}, repeats)
    notes30 = sharp_summary(sharp, lengths)
    ref = t.get("ts")
    rows: list[tuple[str, str, str, str]] = []
    for key, label, _, note in marg:
        note = {"ours30": notes30[0], "ts30": notes30[1]}.get(key, note)
        rows.append((label, fmt_ms(t[key]), "—" if ref is None else f"{t[key] / ref:.2f}×", note))
    if ts_err is not None:
        rows.append(("marginals: torch-struct, scale 30", "—", "", ts_err))

    # decoding, interleaved too; ratio = time / unnparse single-root time
    dec: dict[str, Callable[[], object]] = {
        "ours1": lambda: max_spanning_tree(scores, lengths, single_root=True),
        "ours_multi": lambda: max_spanning_tree(scores, lengths, single_root=False),
    }
    if ufal_cle is not None:
        mats = []
        for b, n in enumerate(lengths.tolist()):
            m = scores[b, : n + 1, : n + 1].double().numpy().T.copy()  # ufal: m[d, h]
            np.fill_diagonal(m, np.nan)
            m[0, :] = np.nan
            mats.append(m)
        dec["ufal"] = lambda: [ufal_cle.chu_liu_edmonds(m) for m in mats]
    td = median_times(dec, repeats)
    d_rows = [
        ("decoding: unnparse `max_spanning_tree` (single root, exact)", td["ours1"], "numba, after compilation"),
        ("decoding: unnparse `max_spanning_tree` (multi root)", td["ours_multi"], ""),
    ]
    if "ufal" in td:
        d_rows.append(("decoding: `ufal.chu_liu_edmonds` 1.0.3 (multi root only), loop over sentences", td["ufal"], ""))
    for label, x, note in d_rows:
        rows.append((label, fmt_ms(x), f"{x / td['ours1']:.2f}× ours", note))
    if "ufal" not in td:
        rows.append(("decoding: `ufal.chu_liu_edmonds`", "—", "", "not installed"))
    if NonProjectiveDependencyCRF is not None:
        am = ts_argmax(ts_in, lengths)
        rows.append(("decoding: torch-struct `argmax`", "—", "", f"returns {am!r} (not implemented in 0.5)"))

    acc = accuracy(30.0)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        "## unnparse.structures",
        "",
        f"Command: `.venv/bin/python bench/structures.py` · date: {datetime.date.today().isoformat()} · "
        f"torch {torch.__version__} · {torch.get_num_threads()} CPU threads · Python {platform.python_version()} · "
        f"load average {load_start:.2f} at the start, {load[0]:.2f} at the end · repeats {repeats} (median)",
        "",
        f"Data: {B} random sentences, lengths uniform 1..{N} (seed {SEED}), scores standard normal × {scale:g} "
        "or × 30 where marked (float32), one padded batch for every method. Times in ms (median); "
        "marginal rows: ratio = time / torch-struct time at scale 2; decoding rows: ratio = time / "
        "unnparse single-root decoding.",
        "",
        "| what | ms | ratio | notes |",
        "|---|---:|---:|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        "Accuracy vs brute-force enumeration (200 sentences of 2..6 words, scores N(0,1) × 30, float64 "
        "inputs, single root):",
        "",
        "| method | max abs err log Z | max abs err marginals | failed sentences |",
        "|---|---:|---:|---:|",
        *[f"| {k} | {ez:.1e} | {em:.1e} | {f} |" for k, (ez, em, f) in acc.items()],
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    section = f"{START}\n{text}\n{END}"
    if BENCH_FILE.exists():
        content = BENCH_FILE.read_text()
        if START in content and END in content:
            pre, rest = content.split(START, 1)
            post = rest.split(END, 1)[1]
            content = pre + section + post
        else:
            content = content.rstrip("\n") + "\n\n" + section + "\n"
    else:
        content = "# Benchmarks\n\n" + section + "\n"
    BENCH_FILE.write_text(content)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args(argv)
    text = run(args.repeats)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"\nwritten to {BENCH_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
