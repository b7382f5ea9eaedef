"""Load benchmark for the CDS Hooks HTTP service: open-loop calls at a fixed rate against a server process.

Why open loop: a closed loop (send the next call when the last one answers) slows down exactly when the
server does and so hides the queueing an EHR would see (coordinated omission). Here call i is due at
t0 + i/rate whatever happens, and its latency runs from that due time to the last byte of the answer.
The server runs as its own process, as in production, and its memory is read from /proc while it works.

Prints figures beside the targets (p99 <= 20 ms, no errors, flat server memory); never asserts.
Exit 0, or 2 when the server does not start.
Run: .venv/bin/python bench/bench_service.py [--rate 200] [--seconds 30] [--connections 8] [--auth jwt|none] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import orjson
import timing  # bench/timing.py: run as `python bench/<script>.py`
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from injectwise.adapters.notes import add_bundle_notes
from injectwise.adapters.service.prefetch import gather
from injectwise.engine.evaluate import assess, review
from injectwise.knowledge import load_knowledge

SHARED = timing.SHARED
VIGNETTES = timing.VIGNETTES
CONVERTER = timing.CONVERTER

SERVICE_PATHS = {"order-select": "/cds-services/injectwise-order-select",
                 "patient-view": "/cds-services/injectwise-patient-view"}
ISSUER = "https://bench.example"
KID = "bench-es384"

P99_TARGET_MS = 20.0
FLAT_MEMORY_MIB = 10.0
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT_S = 5.0
WARMUP_S = 2.0
IDLE_REUSE_S = 3.0  # below uvicorn's 5 s keep-alive timeout
START_TIMEOUT_S = 30.0
BASELINE_RUNS = 5
BASELINE_LOOPS = 50


@dataclass(frozen=True, slots=True)
class Case:
    """One vignette's CDS Hooks request and the service it goes to."""
    name: str
    hook: str
    path: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One planned call: the bytes are built before the run so the client spends no CPU on them while timing."""
    case: Case
    head: bytes


@dataclass(slots=True)
class Outcome:
    case: Case
    latency_s: float  # due time -> end of the answer
    lag_s: float  # due time -> when the client actually started the call (client-side slack)
    error: str | None


class Server:
    """The service as a child process: started, probed on /healthz, stopped; its stderr kept in a file."""

    def __init__(self, cmd: list[str], port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float) -> str | None:
        """None once /healthz answers 200; otherwise why not, in one line."""
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"server exited with code {self.proc.returncode}: {self.last_log_line()}"
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return None
            time.sleep(0.1)
        return f"/healthz did not answer 200 within {timeout_s:.0f} s: {self.last_log_line()}"

    def last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def stop(self) -> None:
        """Terminate politely so uvicorn can shut down; kill if it does not within a few seconds."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Keep-alive connections. A LIFO queue holds idle connections on top of free slots (None): a due call
    reuses an idle connection, else opens a new one rather than wait, and waits only at the cap."""

    def __init__(self, port: int, cap: int) -> None:
        self.port = port
        self.slots: asyncio.LifoQueue[tuple[Conn, float] | None] = asyncio.LifoQueue()
        for _ in range(cap):
            self.slots.put_nowait(None)
        self.live = 0
        self.peak = 0

    async def prefill(self, n: int) -> None:
        """Open n connections up front so the warm-up, not the run, pays for the first connects."""
        conns = [await self.acquire() for _ in range(n)]
        for c in conns:
            self.release(c)

    async def acquire(self) -> Conn:
        while True:
            item = await self.slots.get()
            if item is None:
                break
            conn, idle_since = item
            # uvicorn closes a connection idle for 5 s; a client must not send on one it may be closing.
            if time.monotonic() - idle_since < IDLE_REUSE_S and not conn[0].at_eof():
                return conn
            self.discard(conn)
        try:
            conn = await asyncio.open_connection("127.0.0.1", self.port)
        except BaseException:
            self.slots.put_nowait(None)
            raise
        self.live += 1
        self.peak = max(self.peak, self.live)
        return conn

    def release(self, conn: Conn) -> None:
        self.slots.put_nowait((conn, time.monotonic()))

    def discard(self, conn: Conn) -> None:
        """A connection in an unknown state (error, timeout, Connection: close, stale) is never reused."""
        conn[1].close()
        self.live -= 1
        self.slots.put_nowait(None)

    async def close(self) -> None:
        while not self.slots.empty():
            item = self.slots.get_nowait()
            if item is not None:
                item[0][1].close()
                with contextlib.suppress(OSError):
                    await item[0][1].wait_closed()


class ProtocolError(Exception):
    """The answer is not HTTP/1.1 framed the way this small client understands (Content-Length only)."""


class ConnectError(Exception):
    """No connection could be opened; kept apart from failures on an open connection."""


# ---------------------------------------------------------------- setup


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=200.0, help="calls per second (open loop)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the timed run")
    p.add_argument("--connections", type=int, default=8, help="keep-alive connections opened up front")
    p.add_argument("--auth", choices=["jwt", "none"], default="jwt", help="signed JWT per call, or --insecure-no-auth")
    p.add_argument("--alg", choices=["RS384", "ES384"], default="RS384",
                   help="JWT algorithm (both recommended by the spec; RS384 is Epic's default and cheaper to verify)")
    p.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds at the same rate before timing (not counted)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (injectwise serve --workers)")
    return p.parse_args()


def load_cases(tmp: Path) -> list[Case]:
    """The eight vignettes as CDS Hooks requests, via the shared converter (the same inputs as bench_engine)."""
    out_dir = tmp / "vg"
    files = sorted(str(p) for p in VIGNETTES.glob("*.yaml"))
    done = subprocess.run([sys.executable, str(CONVERTER), *files, "--out", str(out_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_service: {CONVERTER.name} failed: {done.stderr.strip()}")
    cases = []
    for req in sorted(out_dir.glob("*/cds-request.json")):
        body = req.read_bytes()
        hook = orjson.loads(body)["hook"]
        cases.append(Case(req.parent.name, hook, SERVICE_PATHS[hook], body))
    return cases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_trust(tmp: Path, alg: str) -> tuple[Path, Any]:
    """A fresh ES384 or RS384 key (the two the spec recommends): its public JWK in a JWKS file, named by a
    trusted-issuers file the server loads."""
    if alg == "ES384":
        key: Any = ec.generate_private_key(ec.SECP384R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": KID, "use": "sig", "alg": alg})
    (tmp / "jwks.json").write_bytes(orjson.dumps({"keys": [jwk]}))
    issuers = tmp / "issuers.json"
    issuers.write_bytes(orjson.dumps({"issuers": [{"iss": ISSUER, "jwks_file": "jwks.json"}]}))
    return issuers, key


def sign_token(key: Any, alg: str, audience: str, lifetime_s: int) -> str:
    """One token per call: the service refuses a jti it has seen, and aud must be the exact endpoint URL."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + lifetime_s, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": KID})


def request_head(case: Case, port: int, token: str | None) -> bytes:
    lines = [f"POST {case.path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {len(case.body)}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plan_calls(cases: list[Case], n: int, port: int, key: Any, alg: str, lifetime_s: int) -> list[Call]:
    """Rotate through the cases; with a key, pre-sign each call's token now so signing never competes with timing."""
    base = f"http://127.0.0.1:{port}"
    shared = {c.name: request_head(c, port, None) for c in cases}
    calls = []
    for i in range(n):
        case = cases[i % len(cases)]
        head = shared[case.name] if key is None else request_head(case, port, sign_token(key, alg, base + case.path, lifetime_s))
        calls.append(Call(case, head))
    return calls


def server_command(port: int, tmp: Path, issuers: Path | None, workers: int = 1) -> list[str]:
    script = Path(sys.executable).parent / "injectwise"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "injectwise.adapters.cli.app"]
    cmd += ["serve", "--port", str(port), "--public-base-url", f"http://127.0.0.1:{port}",
            "--database-url", f"sqlite:///{tmp / 'fb.db'}", "--clock", "record", "--missing-prefetch", "explain"]
    cmd += ["--trusted-issuers", str(issuers)] if issuers else ["--insecure-no-auth"]
    return cmd + (["--workers", str(workers)] if workers > 1 else [])


# ---------------------------------------------------------------- the load


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Status, whether the connection may be reused, and the body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ProtocolError("bad status line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is None or not length.isdigit():
        raise ProtocolError("no Content-Length")
    body = await reader.readexactly(int(length))
    return int(parts[1]), headers.get("connection", "").lower() != "close", body


def judge(status: int, body: bytes) -> str | None:
    """None for success: a 200 whose JSON body holds "cards"."""
    if status != 200:
        return f"HTTP {status}"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "200 without JSON"
    return None if isinstance(doc, dict) and "cards" in doc else "200 without cards"


async def exchange(pool: Pool, call: Call) -> tuple[int, bytes]:
    """One call on a pooled connection: status and body."""
    try:
        conn = await pool.acquire()
    except OSError as e:
        raise ConnectError(type(e).__name__) from None
    try:
        reader, writer = conn
        writer.writelines((call.head, call.case.body))
        status, keep, body = await read_response(reader)
    except BaseException:
        pool.discard(conn)
        raise
    if keep:
        pool.release(conn)
    else:
        pool.discard(conn)
    return status, body


async def one_call(pool: Pool, call: Call, due: float) -> Outcome:
    """The clock stops at the last byte of the answer; checking the body comes after, off the clock."""
    started = time.perf_counter()
    status, body, error = 0, b"", None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            status, body = await exchange(pool, call)
    except TimeoutError:
        error = "timeout"
    except ConnectError as e:
        error = f"connect failed ({e})"
    except ProtocolError as e:
        error = f"protocol ({e})"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        error = f"connection ({type(e).__name__})"
    ended = time.perf_counter()
    return Outcome(call.case, ended - due, started - due, error or judge(status, body))


async def run_phase(pool: Pool, calls: list[Call], rate: float) -> tuple[list[Outcome], float]:
    """Start call i at t0 + i/rate, never waiting for earlier answers; returns outcomes and the wall time."""
    tasks: list[asyncio.Task[Outcome]] = []
    t0 = time.perf_counter() + 0.005
    for i, call in enumerate(calls):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_call(pool, call, due)))
    outcomes = list(await asyncio.gather(*tasks))
    return outcomes, time.perf_counter() - t0


def family(pid: int) -> list[int]:
    """The process and its live descendants (uvicorn --workers N: a supervisor and N worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MiB (the kernel reports kB), summed over the process and its workers."""
    out = {"VmRSS": 0.0, "VmHWM": 0.0}
    for p in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in out:
                    out[name] += int(value.split()[0]) / 1024
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process and its workers, all threads (fields 14 and 15 of
    /proc/PID/stat)."""
    total = 0
    for p in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def sample_rss(pid: int, samples: list[float], stop: asyncio.Event) -> None:
    """Server RSS once a second while the run lasts: growth under steady load means a leak or an unbounded cache."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        with contextlib.suppress(OSError):
            samples.append(proc_status(pid)["VmRSS"])


@dataclass(slots=True)
class LoadResult:
    outcomes: list[Outcome]
    wall_s: float
    rss: list[float]  # MiB: after warm-up, once a second, at the end
    hwm_end: float
    server_cpu_s: float
    client_cpu_s: float
    peak_connections: int
    log_offset: int  # where the timed run's lines start in the server log


async def load(server: Server, warmup: list[Call], timed: list[Call], rate: float, connections: int) -> LoadResult:
    pool = Pool(server.port, MAX_CONNECTIONS)
    await pool.prefill(connections)
    await run_phase(pool, warmup, rate)
    rss = [proc_status(server.pid)["VmRSS"]]
    offset = server.log_size()
    cpu0, client0 = proc_cpu_s(server.pid), time.process_time()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server.pid, rss, stop))
    outcomes, wall = await run_phase(pool, timed, rate)
    stop.set()
    await sampler
    cpu, client = proc_cpu_s(server.pid) - cpu0, time.process_time() - client0
    end = proc_status(server.pid)
    rss.append(end["VmRSS"])
    await pool.close()
    return LoadResult(outcomes, wall, rss, end["VmHWM"], cpu, client, pool.peak, offset)


# ---------------------------------------------------------------- in-process baseline


def best_mean(fn: Callable[[], object], loops: int = BASELINE_LOOPS, runs: int = BASELINE_RUNS) -> float:
    """Best-of-`runs` mean seconds per call: the floor the HTTP figures are compared with."""
    return timing.best_per_call(fn, loops, runs)


async def stage_means(body: dict[str, Any], kb: Any, hook: str) -> dict[str, float]:
    """Best-of-runs mean seconds of the steps the service runs in-process for one request: prefetch ->
    record (async, but it never waits here), the DocumentReference notes, and the engine."""
    drafts = [e["resource"] for e in body["context"]["draftOrders"]["entry"]] if body["hook"] == "order-select" else []
    evaluate = assess if hook == "order-select" else review
    best = {"gather": math.inf, "notes": math.inf, "engine": math.inf}
    for _ in range(BASELINE_RUNS):
        spent = {"gather": 0.0, "notes": 0.0, "engine": 0.0}
        for _ in range(BASELINE_LOOPS):
            t0 = time.perf_counter()
            record = (await gather(body, drafts, 2.0, False)).record  # a fresh record: notes are added to it
            t1 = time.perf_counter()
            last = record.last_event()
            as_of = last.date() if last is not None else date.today()
            add_bundle_notes(record, kb, as_of)
            t2 = time.perf_counter()
            evaluate(record, kb, as_of)
            t3 = time.perf_counter()
            spent["gather"] += t1 - t0
            spent["notes"] += t2 - t1
            spent["engine"] += t3 - t2
        for k, v in spent.items():
            best[k] = min(best[k], v / BASELINE_LOOPS)
    return best


def baseline(cases: list[Case]) -> dict[str, float]:
    """Mean seconds per request, over the eight, of what the service does in-process: parse, gather,
    notes, engine (the service also renders cards and logs them; those are the service's own cost)."""
    kb = load_knowledge()
    totals = {"parse": 0.0, "gather": 0.0, "notes": 0.0, "engine": 0.0}
    for case in cases:
        body = orjson.loads(case.body)
        for k, v in asyncio.run(stage_means(body, kb, case.hook)).items():
            totals[k] += v
        totals["parse"] += best_mean(lambda case=case: orjson.loads(case.body))
    return {k: v / len(cases) for k, v in totals.items()}


# ---------------------------------------------------------------- report


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a latency some call really had)."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def spread_ms(seconds: Iterable[float]) -> str:
    ms = [v * 1000 for v in seconds]
    return (f"p50 {pct(ms, 50):6.2f}  p90 {pct(ms, 90):6.2f}  p99 {pct(ms, 99):6.2f}  max {max(ms, default=math.nan):7.2f} ms"
            f"  (n={len(ms)})")


def server_timings(log_path: Path, offset: int) -> dict[str, list[float]]:
    """The service logs gather/engine/total ms for every hook call: split the latency into handler and the rest."""
    out: dict[str, list[float]] = defaultdict(list)
    with log_path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"event":"hook"' not in line or b"{" not in line:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(line[line.find(b"{"):])  # one JSON object per log line
                for k in ("gather_ms", "engine_ms", "commit_ms", "total_ms"):
                    out[k].append(float(doc[k]) / 1000)
    return out


def header(args: argparse.Namespace, cases: list[Case], n_tokens: int, sign_s: float) -> None:
    hooks = ", ".join(f"{sum(c.hook == h for c in cases)} {h}" for h in SERVICE_PATHS)
    sizes = sorted(len(c.body) // 1024 for c in cases)
    print(f"CDS Hooks service load benchmark: auth {args.auth}, open loop {args.rate:g}/s for {args.seconds:g} s "
          f"after {args.warmup:g} s warm-up, {args.connections} connections up front (cap {MAX_CONNECTIONS}), "
          f"{args.workers} server worker{'s' if args.workers > 1 else ''}")
    print(f"requests: {len(cases)} vignettes rotated ({hooks}), {sizes[0]}-{sizes[-1]} KiB each"
          + (f"; {n_tokens} {args.alg} tokens pre-signed in {sign_s:.2f} s" if n_tokens else ""))
    print()


def report_calls(args: argparse.Namespace, cases: list[Case], r: LoadResult) -> tuple[float, int]:
    """Counts, rates and latency (overall, per endpoint, per vignette); returns p99 in ms and the error count."""
    ok = [o for o in r.outcomes if o.error is None]
    errors: dict[str, int] = defaultdict(int)
    for o in r.outcomes:
        if o.error is not None:
            errors[o.error] += 1
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    # Outcomes are in schedule order: call i started lag_i after its due time i/rate.
    send_span = max((i / args.rate + o.lag_s for i, o in enumerate(r.outcomes)), default=0.0) + 1 / args.rate
    print(f"sent        {len(r.outcomes)}")
    print(f"completed   {len(ok)} ok")
    print(f"errors      {sum(errors.values())}" + (f"  ({kinds})" if kinds else ""))
    print(f"rate        sent {len(r.outcomes) / send_span:.1f}/s (target {args.rate:g}/s); "
          f"answered {len(ok) / r.wall_s:.1f}/s ok over {r.wall_s:.2f} s until the last answer")
    print(f"latency     {spread_ms(o.latency_s for o in ok)}   [due time -> end of answer, ok calls]")
    for hook, path in SERVICE_PATHS.items():
        print(f"  {hook:<36}  {spread_ms(o.latency_s for o in ok if o.case.path == path)}")
    for case in cases:
        print(f"  {case.name[:36]:<36}  {spread_ms(o.latency_s for o in ok if o.case is case)}")
    return pct([o.latency_s for o in ok], 99) * 1000, sum(errors.values())


def report_processes(r: LoadResult, handler: dict[str, list[float]]) -> None:
    """Where the time went: the server's own per-call timings and CPU, and whether the client kept its schedule."""
    print(f"server      handler {spread_ms(handler.get('total_ms', []))}   [own log: auth+body+gather+engine]")
    print(f"             gather {spread_ms(handler.get('gather_ms', []))}")
    print(f"             commit {spread_ms(handler.get('commit_ms', []))}   [awaited group commit: cards + jti]")
    print(f"             engine {spread_ms(handler.get('engine_ms', []))}   [notes+engine+cards, on the loop]")
    handled = len(handler.get("total_ms", []))  # hook calls the server finished in the window (log lines)
    print(f"            CPU {r.server_cpu_s:.1f} s = {100 * r.server_cpu_s / r.wall_s:.0f}% of one core, "
          f"{1000 * r.server_cpu_s / max(1, len(r.outcomes)):.2f} ms per call sent, "
          f"{1000 * r.server_cpu_s / max(1, handled):.2f} ms per call the server finished ({handled})")
    print(f"client      send lag {spread_ms(o.lag_s for o in r.outcomes)}")
    print(f"            CPU {r.client_cpu_s:.1f} s = {100 * r.client_cpu_s / r.wall_s:.0f}% of one core; "
          f"peak connections {r.peak_connections}")


def report_memory(r: LoadResult) -> float:
    """Server RSS over the run; returns the growth in MiB."""
    growth = r.rss[-1] - r.rss[0]
    flat = growth < FLAT_MEMORY_MIB
    print(f"memory      server RSS start {r.rss[0]:.1f} MiB  end {r.rss[-1]:.1f} MiB  max {max(r.rss):.1f} MiB  "
          f"growth {growth:+.1f} MiB  (VmHWM {r.hwm_end:.1f} MiB, {len(r.rss)} samples)")
    verdict = "flat" if flat else "NOT flat"
    print(f"            {verdict}: growth {growth:+.1f} MiB {'<' if flat else '>='} {FLAT_MEMORY_MIB:g} MiB")
    return growth


def report_baseline(cases: list[Case], base: dict[str, float], r: LoadResult) -> None:
    total = sum(base.values())
    p50 = pct([o.latency_s for o in r.outcomes if o.error is None], 50)
    print(f"baseline    in-process, mean per request over the {len(cases)}: orjson.loads {base['parse'] * 1e6:.0f} us, "
          f"gather {base['gather'] * 1e6:.0f} us, notes {base['notes'] * 1e6:.0f} us, engine {base['engine'] * 1e6:.0f} us; "
          f"sum {total * 1e3:.2f} ms "
          f"(HTTP p50 is {p50 / total:.1f}x that)")


def report_verdict(p99_ms: float, n_err: int, growth: float) -> None:
    checks = [(f"p99 <= {P99_TARGET_MS:g} ms ({p99_ms:.2f})", p99_ms <= P99_TARGET_MS),
              (f"0 errors ({n_err})", n_err == 0),
              (f"flat memory ({growth:+.1f} MiB)", growth < FLAT_MEMORY_MIB)]
    print("target      " + " | ".join(f"{name}: {'met' if good else 'MISSED'}" for name, good in checks)
          + f"  ->  {'PASS' if all(good for _, good in checks) else 'MISS'}")


# ---------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="iw-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cases = load_cases(tmp)
        port = free_port()
        issuers, key = write_trust(tmp, args.alg) if args.auth == "jwt" else (None, None)
        n_warm, n_run = round(args.rate * args.warmup), round(args.rate * args.seconds)
        # Tokens are signed before the server starts; they must outlive start-up and the whole run (the
        # service accepts at most an hour between iat and exp).
        lifetime = min(3600, 300 + int(START_TIMEOUT_S + args.warmup + args.seconds))
        t0 = time.perf_counter()
        calls = plan_calls(cases, n_warm + n_run, port, key, args.alg, lifetime)
        sign_s = time.perf_counter() - t0
        try:
            server = Server(server_command(port, tmp, issuers, args.workers), port, tmp / "server.log")
        except OSError as e:
            print(f"bench_service: the server did not start: {e}", file=sys.stderr)
            return 2
        try:
            why = server.wait_ready(START_TIMEOUT_S)
            if why is not None:
                print(f"bench_service: the server did not start: {why}", file=sys.stderr)
                return 2
            result = asyncio.run(load(server, calls[:n_warm], calls[n_warm:], args.rate, args.connections))
            handler = server_timings(server.log_path, result.log_offset)
        finally:
            server.stop()
        base = baseline(cases)
    header(args, cases, len(calls) if key is not None else 0, sign_s)
    p99_ms, n_err = report_calls(args, cases, result)
    report_processes(result, handler)
    growth = report_memory(result)
    report_baseline(cases, base, result)
    report_verdict(p99_ms, n_err, growth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
