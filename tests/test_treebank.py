"""Tests for unnparse.parser.treebank: local discovery and (mocked) download."""

from __future__ import annotations

import io
import json
import os
import urllib.error
from pathlib import Path

import pytest

from unnparse import downloads
from unnparse.parser.treebank import (
    TreebankError,
    TreebankFiles,
    TreebankNotFoundError,
    default_data_dir,
    find_treebank,
    resolve_treebank,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("")


def _opened_by(fake_urlopen):
    """An ``unnparse.downloads.open_url`` that answers with ``fake_urlopen(request, timeout)``."""
    return lambda request, timeout, hosts: fake_urlopen(request, timeout)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """urlopen fails like an offline machine; the list records the URLs asked for."""
    calls: list[str] = []

    def fake_urlopen(request, timeout=None):
        calls.append(request.full_url if hasattr(request, "full_url") else str(request))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(downloads, "open_url", _opened_by(fake_urlopen))
    return calls


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("UNNPARSE_DATA", raising=False)
    assert default_data_dir() == Path("data")
    monkeypatch.setenv("UNNPARSE_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path


def test_find_treebank_local(tmp_path: Path) -> None:
    _touch(tmp_path / "UD_Foo-Bar", "foo_bar-ud-train.conllu", "foo_bar-ud-dev.conllu", "foo_bar-ud-test.conllu")
    _touch(tmp_path / "UD_Foo-Bar", "README.md", "foo_bar-ud-train.txt")
    tb = find_treebank("UD_Foo-Bar", tmp_path)
    assert tb == TreebankFiles(
        name="UD_Foo-Bar",
        train=[tmp_path / "UD_Foo-Bar/foo_bar-ud-train.conllu"],
        dev=tmp_path / "UD_Foo-Bar/foo_bar-ud-dev.conllu",
        test=tmp_path / "UD_Foo-Bar/foo_bar-ud-test.conllu",
    )
    assert [p.name for p in tb.files] == ["foo_bar-ud-train.conllu", "foo_bar-ud-dev.conllu", "foo_bar-ud-test.conllu"]


def test_find_treebank_multi_train_and_test_only(tmp_path: Path) -> None:
    _touch(tmp_path / "UD_X", "x-ud-train-m.conllu", "x-ud-train-c.conllu", "x-ud-train-l.conllu", "x-ud-test.conllu")
    tb = find_treebank("UD_X", tmp_path)
    assert [p.name for p in tb.train] == ["x-ud-train-c.conllu", "x-ud-train-l.conllu", "x-ud-train-m.conllu"]
    assert tb.dev is None and tb.test is not None
    _touch(tmp_path / "UD_Y", "y-ud-test.conllu")
    assert find_treebank("UD_Y", tmp_path).train == []


@pytest.mark.skipif(not (SHARED / "ud-samples/UD_Czech-PDT").is_dir(), reason="shared PDT sample not available")
def test_find_treebank_pdt_layout() -> None:
    tb = find_treebank("UD_Czech-PDT", SHARED / "ud-samples")
    assert [p.name for p in tb.train] == [
        "cs_pdt-ud-train-c.conllu",
        "cs_pdt-ud-train-l.conllu",
        "cs_pdt-ud-train-m.conllu",
    ]
    assert tb.dev is not None and tb.dev.name == "cs_pdt-ud-dev.conllu"
    assert tb.test is not None and tb.test.name == "cs_pdt-ud-test.conllu"


@pytest.mark.skipif(not (SHARED / "ud/UD_English-ParTUT").is_dir(), reason="shared UD treebanks not available")
def test_resolve_finds_local_without_network(no_network: list[str]) -> None:
    tb = resolve_treebank("UD_English-ParTUT", SHARED / "ud")
    assert [p.name for p in tb.train] == ["en_partut-ud-train.conllu"]
    assert no_network == []


def test_find_errors(tmp_path: Path) -> None:
    with pytest.raises(TreebankNotFoundError, match="no folder"):
        find_treebank("UD_Nope", tmp_path)
    _touch(tmp_path / "UD_Empty", "README.md")
    with pytest.raises(TreebankNotFoundError, match="has no"):
        find_treebank("UD_Empty", tmp_path)
    _touch(tmp_path / "UD_Two", "a-ud-dev.conllu", "b-ud-dev.conllu")
    with pytest.raises(TreebankError, match="several files"):
        find_treebank("UD_Two", tmp_path)


@pytest.mark.parametrize("name", ["../UD_Foo", "UD_Foo/../x", "EN_Foo", "UD_", "UD_Foo bar", "UD_Foo.x", "", "UD_Fö"])
def test_invalid_names_rejected_before_network(name: str, tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(TreebankNotFoundError, match="invalid treebank name"):
        resolve_treebank(name, tmp_path)
    assert no_network == []


def test_unknown_treebank_offline_one_line_error(tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(TreebankNotFoundError) as info:
        resolve_treebank("UD_Foo", tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"treebank UD_Foo not found in {tmp_path} and could not be downloaded "
        "(no network: [Errno -3] Temporary failure in name resolution); "
        f"put its .conllu files in {tmp_path / 'UD_Foo'} or name the files (train: --train/--dev; evaluate: --input)"
    )
    assert no_network == ["https://api.github.com/repos/UniversalDependencies/UD_Foo/contents"]
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_download_disabled(tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(TreebankNotFoundError, match=r"\(downloading disabled\)"):
        resolve_treebank("UD_Foo", tmp_path, download=False)
    assert no_network == []


def test_http_404_is_unknown_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_urlopen(request, timeout=None):
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)  # type: ignore[arg-type]

    monkeypatch.setattr(downloads, "open_url", _opened_by(fake_urlopen))
    with pytest.raises(TreebankNotFoundError, match=r"no repository UniversalDependencies/UD_Foo on GitHub"):
        resolve_treebank("UD_Foo", tmp_path, progress=False)


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fake_github(files: dict[str, bytes], fail_on: str | None = None):
    listing = [
        {"type": "file", "name": name, "size": len(data), "download_url": f"https://raw.githubusercontent.com/x/{name}"}
        for name, data in files.items()
    ] + [{"type": "dir", "name": "not-to-release", "download_url": None}]
    requested: list[str] = []

    def fake_urlopen(request, timeout=None):
        url = request.full_url
        requested.append(url)
        if url.startswith("https://api.github.com/"):
            return _Response(json.dumps(listing).encode())
        name = url.rsplit("/", 1)[1]
        if name == fail_on:
            raise urllib.error.URLError("connection reset")
        return _Response(files[name])

    return fake_urlopen, requested


def test_download_writes_conllu_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "foo-ud-train.conllu": b"train data\n",
        "foo-ud-test.conllu": b"test data\n",
        "README.md": b"readme",
    }
    fake, requested = _fake_github(files)
    monkeypatch.setattr(downloads, "open_url", _opened_by(fake))
    tb = resolve_treebank("UD_Foo", tmp_path / "data", progress=False)
    folder = tmp_path / "data" / "UD_Foo"
    assert tb == TreebankFiles("UD_Foo", [folder / "foo-ud-train.conllu"], None, folder / "foo-ud-test.conllu")
    assert (folder / "foo-ud-train.conllu").read_bytes() == b"train data\n"
    assert sorted(os.listdir(folder)) == ["foo-ud-test.conllu", "foo-ud-train.conllu"]  # no README, no temp files
    assert os.listdir(tmp_path / "data") == ["UD_Foo"]  # staging folder removed
    assert not any("README" in url for url in requested)
    # second call: found locally, no network
    monkeypatch.setattr(downloads, "open_url", None)
    assert resolve_treebank("UD_Foo", tmp_path / "data") == tb


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"foo-ud-dev.conllu": b"dev\n", "foo-ud-test.conllu": b"test\n", "foo-ud-train.conllu": b"train\n"}
    fake, _ = _fake_github(files, fail_on="foo-ud-train.conllu")
    monkeypatch.setattr(downloads, "open_url", _opened_by(fake))
    with pytest.raises(TreebankNotFoundError, match="no network: connection reset"):
        resolve_treebank("UD_Foo", tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


def test_repository_without_conllu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, _ = _fake_github({"README.md": b"x"})
    monkeypatch.setattr(downloads, "open_url", _opened_by(fake))
    with pytest.raises(TreebankNotFoundError, match="has no .conllu files"):
        resolve_treebank("UD_Foo", tmp_path, progress=False)
