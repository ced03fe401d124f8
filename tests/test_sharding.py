"""Dealing sentences to shards in blocks and merging the outputs back."""

from __future__ import annotations

import pytest

from unnparse.parser.sharding import merge_shards, parse_shard_spec, take_shard


@pytest.mark.parametrize(("total", "n", "block"), [(0, 2, 3), (1, 3, 2), (12, 3, 2), (13, 3, 2), (7, 1, 5), (10, 4, 1)])
def test_shards_partition_and_merge_back(tmp_path, total, n, block):
    items = [f"sentence {i}" for i in range(total)]
    shards = [list(take_shard(items, i, n, block)) for i in range(n)]
    assert sorted(x for s in shards for x in s) == sorted(items)
    paths = []
    for i, shard in enumerate(shards):
        path = tmp_path / f"out{i}.jsonl"
        path.write_text("".join(f'{{"s": "{x}"}}\n' for x in shard))
        paths.append(path)
    merged = list(merge_shards(paths, "json", block))
    assert merged == [f'{{"s": "{x}"}}\n' for x in items]


def test_blank_line_records(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1\tx\n\n3\tz\n\n")
    b.write_text("2\ty\n2b\n\n")
    assert "".join(merge_shards([a, b], "conllu", 1)) == "1\tx\n\n2\ty\n2b\n\n3\tz\n\n"


def test_mismatched_shards_are_reported(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text('{"s": 1}\n')
    b.write_text('{"s": 2}\n{"s": 3}\n{"s": 4}\n')
    with pytest.raises(ValueError, match="do not fit"):
        list(merge_shards([a, b], "json", 2))


@pytest.mark.parametrize("spec", ["1", "a/b", "2/2", "-1/2", "0/0"])
def test_bad_specs(spec):
    with pytest.raises(ValueError):
        parse_shard_spec(spec)
    assert parse_shard_spec(" 1 / 4 ") == (1, 4)
