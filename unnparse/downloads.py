"""Bounded HTTP downloads: a total deadline, a size cap, and redirects only to the expected hosts.

Every download of the package (UD treebanks, MNIST) goes through :func:`fetch`: a server that sends more than the
cap (its ``Content-Length`` is checked before anything is read, and the stream is cut at the cap), that trickles
its answer past the deadline, or that redirects to a host outside the allowed ones is refused with a
:class:`DownloadError` whose message is one line.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

__all__ = ["DownloadError", "fetch", "host_of", "open_url"]

_CHUNK = 1 << 16


class DownloadError(ValueError):
    """A download refused or cut: too big, too slow, or redirected to an unexpected host (one-line message)."""


def host_of(url: str) -> str:
    """The lower-cased host name of ``url`` ('' when it has none)."""
    return (urllib.parse.urlsplit(url).hostname or "").lower()


class _HostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an http(s) URL on one of ``hosts``."""

    def __init__(self, hosts: Collection[str]) -> None:
        super().__init__()
        self.hosts = {h.lower() for h in hosts}

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        """The request for ``newurl``, or DownloadError when it leaves the allowed hosts."""
        target = urllib.parse.urljoin(req.full_url, newurl)
        scheme = urllib.parse.urlsplit(target).scheme
        if scheme not in ("http", "https") or host_of(target) not in self.hosts:
            raise DownloadError(
                f"{req.full_url}: redirected to {host_of(target) or target!r}, which is not an expected host "
                f"({', '.join(sorted(self.hosts))})"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(request: urllib.request.Request, *, timeout: float, hosts: Collection[str]) -> Any:
    """Open ``request`` (the response, as :func:`urllib.request.urlopen` gives it), following redirects only to
    ``hosts``; every socket operation waits at most ``timeout`` seconds."""
    return urllib.request.build_opener(_HostRedirects(hosts)).open(request, timeout=timeout)


def fetch(
    url: str,
    *,
    allowed_hosts: Collection[str],
    max_bytes: int,
    deadline: float,
    timeout_s: float = 60.0,
    sink: Callable[[bytes], Any] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """Download ``url`` under bounds; the body, or ``b""`` when each piece was handed to ``sink`` as it came.

    Args:
        url: an http(s) URL on one of ``allowed_hosts``.
        allowed_hosts: the hosts that the URL and every redirect may name.
        max_bytes: the most bytes accepted (the ``Content-Length`` announced, then the bytes received).
        deadline: a :func:`time.monotonic` time by which the whole download must have ended.
        timeout_s: the most seconds one network operation may wait (never past the deadline).
        sink: called with each piece of the body (then nothing is kept in memory).
        headers: extra request headers.

    Raises:
        DownloadError: a URL or redirect to another host, a body over ``max_bytes``, or the deadline passed.
        urllib.error.URLError, OSError: network problems (no network, HTTP errors, timeouts).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https") or host_of(url) not in {
        h.lower() for h in allowed_hosts
    }:
        raise DownloadError(f"{url}: not an http(s) URL on an expected host ({', '.join(sorted(allowed_hosts))})")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DownloadError(f"{url}: the download deadline passed before it started")
    request = urllib.request.Request(url, headers={"User-Agent": "unnparse", "Accept": "*/*", **(headers or {})})
    try:
        response = open_url(request, timeout=max(0.01, min(timeout_s, remaining)), hosts=allowed_hosts)
    except TimeoutError:
        raise DownloadError(f"{url}: no answer in time") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise DownloadError(f"{url}: no answer in time") from None
        raise
    with response:
        announced = getattr(response, "headers", {}).get("Content-Length")
        if announced is not None and announced.strip().isdigit() and int(announced) > max_bytes:
            raise DownloadError(f"{url}: {int(announced):,} bytes announced, more than the {max_bytes:,} allowed")
        pieces: list[bytes] = []
        total = 0
        read = getattr(response, "read1", response.read)  # read1: returns what has arrived, never waits for more
        while True:
            if time.monotonic() > deadline:
                raise DownloadError(f"{url}: download not finished before its deadline ({total:,} bytes received)")
            try:
                piece = read(_CHUNK)
            except TimeoutError:
                raise DownloadError(f"{url}: the server stopped sending ({total:,} bytes received)") from None
            if not piece:
                break
            total += len(piece)
            if total > max_bytes:
                raise DownloadError(f"{url}: more than the {max_bytes:,} bytes allowed")
            if sink is not None:
                sink(piece)
            else:
                pieces.append(piece)
    return b"".join(pieces)
