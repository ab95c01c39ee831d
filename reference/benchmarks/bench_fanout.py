# SPDX-License-Identifier: GPL-3.0-or-later
"""Fan-out benchmark: the reference against a naive in-memory aiohttp server, same client, one run.

For each worker count (1, 2) and subscriber count (100, 1,000; 10,000 with ``--large``) it
opens that many raw-socket SSE subscribers, spread over loopback source addresses
(127.0.x.y, at most ``--per-address`` each), on the reference (``dualstore serve``, embedded
database) and on the naive baseline (``naive_server.py``), then POSTs ``--rate`` documents
a second for ``--seconds`` seconds from one sequential writer and prints, as medians of
``--repeats`` alternating runs: delivery latency p50/p99/max (POST start -> event bytes read
by the subscriber), POSTs completed vs asked, RSS growth per open stream (server workers only,
and with the database and master), and server CPU seconds per delivered event; each
reference figure also as a ratio to the baseline's. ``--idle N`` holds N idle streams per
server for ``--hold`` seconds with a short heartbeat and reports how many got every heartbeat
on time. ``--journal-off`` adds a third server per cell, the reference with inserts that do
not wait for the journal (what durability costs); ``--mongodb-uri URI`` runs the reference on
that MongoDB instead of the embedded daemon (a database on its own cores or host). A
benchmark, not a test: the numbers depend on the machine and its load.
Run: ``python reference/benchmarks/bench_fanout.py [--large] [--idle 10000] [--journal-off]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import psutil
from dualstore_reference.embedded import EmbeddedDatabase, free_port
from dualstore_reference.launcher import RunningReference, start_reference, with_database
from pymongo import MongoClient
from pymongo.errors import PyMongoError

COLLECTION = "bench"
NAIVE = Path(__file__).with_name("naive_server.py")
MARKER = re.compile(rb'"text":"fanout-(\d+)"')
HEARTBEAT = b"event: heartbeat"
OPEN_CONCURRENCY = 50
"""Streams being opened at once (--open-concurrency)."""
OPEN_ATTEMPTS = 30


@dataclass
class Tally:
    """What every subscriber of one run received (shared, to keep the client cheap)."""

    sent_at: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0


class Subscriber(asyncio.Protocol):
    """One SSE subscriber on a raw socket: timestamps marked events and heartbeats."""

    def __init__(self, tally: Tally, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.head = b""
        self.carry = b""
        self.status = 0
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.heartbeats: list[float] = []
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.refusal = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head.split(b" ", 2)[1])
            data, self.head = self.head[end + 4:], b""
            if self.status != 200 and not self.opened.done():
                self.refusal = data[:400]
                self.opened.set_result(self.status)
        # Events are whole lines; chunk framing never splits a line, TCP segments may.
        buffer = self.carry + data
        cut = buffer.rfind(b"\n") + 1
        self.carry = buffer[cut:]
        complete = buffer[:cut]
        if HEARTBEAT in complete:
            self.heartbeats.append(now)
            if not self.opened.done():
                self.opened.set_result(self.status)
        tally = self.tally
        for match in MARKER.finditer(complete):
            started = tally.sent_at.get(int(match.group(1)))
            if started is not None:
                tally.latencies.append(now - started)
                tally.delivered += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_result(self.status or -1)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _same(subscriber: Subscriber) -> Subscriber:
    return subscriber


def source_address(index: int, per_address: int) -> str:
    """The loopback source address of the index-th subscriber (127.0.1.1 onwards)."""
    block = index // per_address
    return f"127.0.{1 + block // 250}.{1 + block % 250}"


async def open_subscribers(url: str, count: int, per_address: int, tally: Tally,
                           timeout: float = 60.0) -> list[Subscriber]:
    """Open count streams (OPEN_CONCURRENCY at a time, retrying a 503); each is open once
    its first heartbeat arrived."""
    host, port = url.removeprefix("http://").split(":")
    request = (f"GET /v1/{COLLECTION}/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)
    subscribers: list[Subscriber] = []
    retried: list[int] = []

    async def one(index: int) -> None:
        for attempt in range(OPEN_ATTEMPTS):
            async with limit:
                subscriber = Subscriber(tally, request)
                await loop.create_connection(functools.partial(_same, subscriber), host, int(port),
                                             local_addr=(source_address(index, per_address), 0))
                async with asyncio.timeout(timeout):
                    status = await subscriber.opened
            if status == 200:
                subscribers.append(subscriber)
                return
            subscriber.close()
            if status != 503 or attempt == OPEN_ATTEMPTS - 1:  # 503: a real client retries
                raise SystemExit(f"stream {index} refused with HTTP {status}: "
                                 f"{subscriber.refusal.decode(errors='replace')}")
            retried.append(index)
            await asyncio.sleep(1.0)

    await asyncio.gather(*(one(i) for i in range(count)))
    if retried:
        print(f"  ({len(retried)} stream opens answered 503 and were retried)", flush=True)
    return subscribers


async def close_subscribers(subscribers: list[Subscriber]) -> None:
    """Drop every connection and give the server a moment to notice."""
    for subscriber in subscribers:
        subscriber.close()
    await asyncio.sleep(2.0)


@dataclass
class Server:
    """A server under test: its URL and the processes whose RSS and CPU count."""

    name: str
    url: str
    workers: Callable[[], list[int]]
    everything: Callable[[], list[int]]
    stop: Callable[[], None]


def _tree(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    return []


def start_naive(heartbeat: float) -> Server:
    """Start the baseline and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(NAIVE), "--port", str(port), "--heartbeat-seconds", str(heartbeat)],
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(
            url + "/v1/health", timeout=1
        ) as answer:
            if answer.status == 200:
                break
        time.sleep(0.1)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return Server("naive", url, lambda: [process.pid], lambda: [process.pid], stop)


def without_journal(uri: str) -> str:
    """uri with ``journal=false`` (replacing any journal option in it)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() != "journal"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("journal", "false")])))


def mongodb_uri(text: str) -> str:
    """An argparse type: a mongodb:// or mongodb+srv:// URI."""
    if not text.startswith(("mongodb://", "mongodb+srv://")):
        raise argparse.ArgumentTypeError(
            f"not a MongoDB URI (mongodb:// or mongodb+srv://): {text!r}"
        )
    return text


def start_ours(
    workers: int,
    heartbeat: float,
    folder: Path,
    journal: bool = True,
    mongodb_uri: str | None = None,
) -> Server:
    """Start ``dualstore serve`` with the embedded database, or on mongodb_uri.

    journal=False gives the reference a URI with ``journal=false`` (on the embedded daemon,
    started here as a separate process): inserts are acknowledged without waiting for the
    journal, as the reference honours a write concern in its URI. A measurement of what
    durability costs, not a configuration the reference ships. With mongodb_uri the server
    uses a fresh database there, dropped by ``stop``; that database's own RSS and CPU are not
    counted (it is not a process of this machine's server tree).
    """
    env = {
        "COLLECTIONS": COLLECTION,
        "STREAM_CAP_PER_IP": "100",
        "RATE_LIMIT_BURST": "0",
        "EMBEDDING_DIM": "16",
        "SSE_HEARTBEAT_SECONDS": str(heartbeat),
        "MAX_CONNECTIONS_PER_WORKER": "12000",  # 10,000 streams may land on one worker
    }
    data_dir = Path(tempfile.mkdtemp(prefix="ref-", dir=folder))
    database: EmbeddedDatabase | None = None
    if mongodb_uri is None and not journal:
        database = EmbeddedDatabase(storage_path=str(data_dir / "db")).start()
    base = mongodb_uri or (database.uri if database is not None else None)
    fresh = f"dualstore_bench_{uuid.uuid4().hex[:12]}"
    uri = None if base is None else with_database(base, fresh)
    if uri is not None and not journal:
        uri = without_journal(uri)
    try:
        running: RunningReference = start_reference(
            env=env, workers=workers, data_dir=data_dir, mongodb_uri=uri
        )
    except BaseException:
        if database is not None:
            database.stop()
        raise
    pid = running.process.pid if running.process is not None else 0
    extra = [] if database is None or database.process is None else [database.process.pid]

    def stop() -> None:
        running.close()
        if mongodb_uri is not None:
            client: MongoClient[dict[str, object]] = MongoClient(
                with_database(mongodb_uri, fresh), serverSelectionTimeoutMS=5000
            )
            try:
                client.drop_database(fresh)
            except PyMongoError as error:
                print(f"could not drop the benchmark database {fresh}: {error}", file=sys.stderr)
            finally:
                client.close()
        if database is not None:
            database.stop()

    name = f"reference/{workers}w" + ("" if journal else " no journal")
    name += " external db" if mongodb_uri else ""
    return Server(name, running.url, lambda: running.pids()[1:], lambda: _tree(pid) + extra, stop)


def rss(pids: list[int]) -> int:
    """Resident bytes of the processes."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def run_cell(server: Server, subscribers: int, args: argparse.Namespace) -> dict[str, float]:
    """One timed run: open, write at the asked rate, drain, close; the run's figures."""
    tally = Tally()
    await asyncio.sleep(1.0)
    rss_workers, rss_all = rss(server.workers()), rss(server.everything())
    streams = await open_subscribers(server.url, subscribers, args.per_address, tally)
    await asyncio.sleep(2.0)
    grown_workers = (rss(server.workers()) - rss_workers) / subscribers
    grown_all = (rss(server.everything()) - rss_all) / subscribers
    cpu_workers, cpu_all = cpu(server.workers()), cpu(server.everything())
    asked = int(args.rate * args.seconds)
    completed = 0
    started = time.monotonic()
    end = started + args.seconds
    async with aiohttp.ClientSession(
        base_url=server.url, connector=aiohttp.TCPConnector(limit=1)
    ) as session:
        for i in range(asked):
            wait = started + i / args.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() >= end:
                break
            tally.sent_at[i] = time.monotonic()
            async with session.post(f"/v1/{COLLECTION}", json={"text": f"fanout-{i}"}) as answer:
                await answer.read()
                if answer.status == 201:
                    completed += 1
    expected = completed * subscribers
    deadline = time.monotonic() + 10.0
    while tally.delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    used_workers = cpu(server.workers()) - cpu_workers
    used_all = cpu(server.everything()) - cpu_all
    lost = sum(1 for stream in streams if stream.lost)
    await close_subscribers(streams)
    delivered = max(tally.delivered, 1)
    latencies = tally.latencies
    return {
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "max": max(latencies, default=0.0) * 1000,
        "posts": completed,
        "asked": asked,
        "missing": expected - tally.delivered,
        "dropped": lost,
        "rss_workers": grown_workers / 1024,
        "rss_all": grown_all / 1024,
        "cpu_workers": used_workers / delivered * 1e6,
        "cpu_all": used_all / delivered * 1e6,
    }


async def run_idle(server: Server, count: int, args: argparse.Namespace) -> dict[str, float]:
    """Hold count idle streams; how many got every heartbeat on time, RSS per stream, and
    the server's CPU (all its processes, the database included) to open and to hold them."""
    tally = Tally()
    await asyncio.sleep(1.0)
    rss_workers, rss_all = rss(server.workers()), rss(server.everything())
    cpu_before = cpu(server.everything())
    opening = time.monotonic()
    streams = await open_subscribers(server.url, count, args.per_address, tally, timeout=300)
    opened = time.monotonic() - opening
    cpu_opened = cpu(server.everything())
    held_from = time.monotonic()
    await asyncio.sleep(args.hold)
    now = time.monotonic()
    cpu_held = cpu(server.everything())
    grown_workers = (rss(server.workers()) - rss_workers) / count
    grown_all = (rss(server.everything()) - rss_all) / count
    gaps: list[float] = []
    for stream in streams:
        beats = [t for t in stream.heartbeats if t >= held_from] + [now]
        previous = max([t for t in stream.heartbeats if t < held_from], default=held_from)
        worst = 0.0
        for beat in beats:
            worst, previous = max(worst, beat - previous), beat
        gaps.append(worst)
    lost = sum(1 for stream in streams if stream.lost)
    await close_subscribers(streams)
    late = args.idle_heartbeat + args.late
    return {
        "open_seconds": opened,
        "on_time": sum(1 for gap in gaps if gap <= late),
        "dropped": lost,
        "gap_p99": percentile(gaps, 0.99),
        "gap_max": max(gaps, default=0.0),
        "rss_workers": grown_workers / 1024,
        "rss_all": grown_all / 1024,
        "cpu_open_seconds": cpu_opened - cpu_before,
        "cpu_held_percent": (cpu_held - cpu_opened) / (now - held_from) * 100,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-figure median over repeated runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}x" if base > 0 else "n/a"


def report_cell(label: str, ours: dict[str, float], base: dict[str, float]) -> str:
    """A markdown table row: reference figure (ratio to the baseline)."""
    cells = [
        f"{ours['p50']:.0f} ({_ratio(ours['p50'], base['p50'])})",
        f"{ours['p99']:.0f} ({_ratio(ours['p99'], base['p99'])})",
        f"{ours['max']:.0f} ({_ratio(ours['max'], base['max'])})",
        f"{ours['posts']:.0f}/{ours['asked']:.0f} (naive {base['posts']:.0f})",
        f"{ours['rss_workers']:.1f} / {ours['rss_all']:.1f} (naive {base['rss_workers']:.1f})",
        f"{ours['cpu_workers']:.0f} / {ours['cpu_all']:.0f} "
        f"({_ratio(ours['cpu_all'], base['cpu_all'])})",
    ]
    return f"| {label} | " + " | ".join(cells) + " |"


async def main_async(args: argparse.Namespace, folder: Path) -> None:
    subscriber_counts = [100, 1000] + ([10000] if args.large else [])
    print(f"machine load before: {Path('/proc/loadavg').read_text().strip()}")
    print(f"{args.rate:g} POST/s for {args.seconds:g} s per run, medians of {args.repeats}")
    rows: list[str] = []
    baseline_rows: list[str] = []
    for workers in args.workers:
        for subscribers in subscriber_counts:
            if args.only and subscribers not in args.only:
                continue
            # Fresh servers per cell: RSS growth is only meaningful in a process that has
            # not held streams before (freed memory is reused, not returned).
            servers: dict[str, Server] = {}
            try:
                servers["ours"] = start_ours(workers, 15.0, folder, mongodb_uri=args.mongodb_uri)
                servers["naive"] = start_naive(15.0)
                if args.journal_off:
                    servers["no journal"] = start_ours(
                        workers, 15.0, folder, journal=False, mongodb_uri=args.mongodb_uri
                    )
                warm = argparse.Namespace(**{**vars(args), "seconds": 1.0})
                for server in servers.values():
                    await run_cell(server, 5, warm)
                runs: dict[str, list[dict[str, float]]] = {key: [] for key in servers}
                order = list(servers.items())
                for repeat in range(args.repeats):
                    # Rotate who goes first, so no server always runs on a fresher machine.
                    shift = repeat % len(order)
                    for key, server in order[shift:] + order[:shift]:
                        result = await run_cell(server, subscribers, args)
                        runs[key].append(result)
                        print(f"  {server.name:>14} {subscribers:>6} subs run {repeat + 1}: "
                              + ", ".join(f"{k} {v:.1f}" for k, v in result.items()),
                              flush=True)
                medians = {key: median_of(results) for key, results in runs.items()}
                for key, median in medians.items():  # the first run's (fresh process)
                    for figure in ("rss_workers", "rss_all"):
                        median[figure] = runs[key][0][figure]
                base = medians["naive"]
                label = f"{subscribers:,} subs, {workers} worker{'s' if workers > 1 else ''}"
                cell_rows = [report_cell(label, medians["ours"], base)]
                if "no journal" in medians:
                    cell_rows.append(
                        report_cell(label + ", no journal", medians["no journal"], base)
                    )
                rows += cell_rows
                baseline_rows.append(
                    f"| {label} | {base['p50']:.0f} | {base['p99']:.0f} | {base['max']:.0f} | "
                    f"{base['posts']:.0f}/{base['asked']:.0f} | {base['rss_workers']:.1f} | "
                    f"{base['cpu_all']:.0f} |"
                )
                print("\n".join(cell_rows), flush=True)
            finally:
                for server in servers.values():
                    server.stop()
    print()
    print("| cell | p50 ms | p99 ms | max ms | POSTs done/asked | RSS/stream KiB "
          "(workers / +db) | CPU us/delivery (workers / all) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nnaive baseline, same runs:")
    print("| cell | p50 ms | p99 ms | max ms | POSTs | RSS/stream KiB | CPU us/delivery |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(baseline_rows))
    if args.idle:
        ours = start_ours(2, args.idle_heartbeat, folder, mongodb_uri=args.mongodb_uri)
        naive = start_naive(args.idle_heartbeat)
        try:
            for server in (ours, naive):
                result = await run_idle(server, args.idle, args)
                print(f"idle {args.idle} streams on {server.name}, heartbeat "
                      f"{args.idle_heartbeat:g} s, held {args.hold:g} s: "
                      + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
        finally:
            ours.stop()
            naive.stop()
    print(f"machine load after: {Path('/proc/loadavg').read_text().strip()}")


def main() -> None:
    global OPEN_CONCURRENCY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="POSTs per second asked")
    parser.add_argument("--seconds", type=float, default=20.0, help="write window per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--large", action="store_true", help="add the 10,000-subscriber cell")
    parser.add_argument("--only", type=int, nargs="*", help="only these subscriber counts")
    parser.add_argument("--per-address", type=int, default=50,
                        help="subscribers per loopback source address")
    parser.add_argument("--idle", type=int, default=0, help="hold this many idle streams")
    parser.add_argument("--open-concurrency", type=int, default=OPEN_CONCURRENCY,
                        help="streams opened at once (each open takes a lease in the database)")
    parser.add_argument("--idle-heartbeat", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--journal-off", action="store_true",
                        help="add a reference whose inserts do not wait for the journal "
                             "(what durability costs; not a shipped configuration)")
    parser.add_argument("--mongodb-uri", type=mongodb_uri,
                        help="run the reference on this MongoDB (a fresh database per server, "
                             "dropped after) instead of the embedded daemon; its RSS and CPU "
                             "are then not counted")
    parser.add_argument("--late", type=float, default=1.0,
                        help="a heartbeat gap over interval + this is late")
    args = parser.parse_args()
    OPEN_CONCURRENCY = args.open_concurrency
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 streams
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        asyncio.run(main_async(args, Path(folder)))


if __name__ == "__main__":
    main()
