"""Download Binance public-archive files (and their ``.CHECKSUM``) into the archive's raw layout.

A URL like ``https://data.binance.vision/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip``
lands at ``data/market/binance/spot/daily/aggTrades/BTCUSDT/...zip`` (the part after ``/data/``), the
checksum beside it. ``file://`` URLs and plain paths are used where they are. Downloads stream to a
``.part`` file renamed when complete, a few at a time, with retries on connection errors and 5xx answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import aiohttp

RETRIES = 3


@dataclass(frozen=True, slots=True)
class Fetched:
    source: str
    path: Path | None
    error: str | None = None


def is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "file")


def read_url_list(path: Path) -> list[str]:
    """URLs (or paths) of a list file: one a line, blank lines and ``#`` comments ignored."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def local_target(url: str, raw_root: Path) -> Path:
    """Where a downloaded URL is kept under ``raw_root`` (``data/market/binance``)."""
    path = unquote(urlparse(url).path)
    if "/data/" in path:
        rel = path.split("/data/", 1)[1]
    else:
        rel = "downloads/" + path.rsplit("/", 1)[-1]
    parts = [p for p in rel.split("/") if p and p not in (".", "..")]
    return raw_root.joinpath(*parts)


async def _download(session: aiohttp.ClientSession, url: str, target: Path, required: bool) -> str | None:
    """Fetch ``url`` to ``target``; an error message, or None. A missing optional file is not an error."""
    last = ""
    for attempt in range(RETRIES):
        try:
            async with session.get(url) as resp:
                if resp.status == 404 and not required:
                    return None
                if resp.status >= 500:
                    last = f"HTTP {resp.status}"
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                if resp.status != 200:
                    return f"HTTP {resp.status} {resp.reason}"
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_name(target.name + ".part")
                with part.open("wb") as fh:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        fh.write(chunk)
                expected = resp.content_length
                if expected is not None and part.stat().st_size != expected:
                    last = f"truncated download ({part.stat().st_size} of {expected} bytes)"
                    continue
                part.replace(target)
                return None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.2 * (attempt + 1))
    return f"failed after {RETRIES} attempts: {last}"


async def fetch_all(
    sources: Iterable[str],
    raw_root: Path,
    concurrency: int = 4,
    on_done: Callable[[Fetched], None] | None = None,
    timeout_s: float = 300.0,
) -> list[Fetched]:
    """Local paths of every source (downloading http(s) URLs and their ``.CHECKSUM``), in order."""
    sources = list(sources)
    sem = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)

    async def one(session: aiohttp.ClientSession, src: str) -> Fetched:
        parsed = urlparse(src)
        if parsed.scheme in ("", "file"):
            res = Fetched(src, Path(unquote(parsed.path)) if parsed.scheme else Path(src))
        else:
            target = local_target(src, raw_root)
            async with sem:
                err = await _download(session, src, target, required=True)
                if err is None:
                    ck = target.with_name(target.name + ".CHECKSUM")
                    cerr = await _download(session, src + ".CHECKSUM", ck, required=False)
                    if cerr:
                        err = f"checksum file: {cerr}"
            res = Fetched(src, None if err else target, f"{src}: {err}" if err else None)
        if on_done:
            on_done(res)
        return res

    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(one(session, s) for s in sources)))
