"""The durable ledger: everything the device must never lose.

SQLite from the standard library in WAL mode with ``synchronous=FULL``: a
transaction that returned from COMMIT survives a power cut. Services write a
record and its outbox event in ONE transaction, then act (print, show). The
sync worker drains the outbox; an event leaves it only on the central
system's acknowledgement, or goes to dead letters with the reason.

Records carry wall time (a Pi has no RTC, so it may be wrong), the boot id
and a local sequence number (the outbox rowid), which together order them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from kiosk.core import keys
from kiosk.core.time import wall_now


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


# Each entry moves the schema one version up. Never edit a released entry:
# devices in the field upgrade by running the ones they have not seen.
MIGRATIONS: list[str] = [
    # 1: the base schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox(state, seq);
    CREATE TABLE dead_letters (
        uuid TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL,
        dead_at TEXT NOT NULL
    );
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        request_id TEXT NOT NULL UNIQUE,
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        number INTEGER NOT NULL,
        display TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL CHECK (source IN ('online', 'lease', 'offline')),
        people_ahead INTEGER,
        est_wait_s INTEGER,
        issued_at TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        print_state TEXT NOT NULL DEFAULT 'pending',
        print_count INTEGER NOT NULL DEFAULT 0,
        UNIQUE (day, category, number, priority)
    );
    CREATE TABLE day_counters (
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        next_number INTEGER NOT NULL,
        PRIMARY KEY (day, category)
    );
    CREATE TABLE leases (
        lease_id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        next_number INTEGER NOT NULL
    );
    CREATE TABLE ratings (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    """,
    # 2: dispenser. A ticket number as the citizen reads it (display, e.g.
    # "A905") is unique per service day whatever its source, so two paths to
    # the same number fail in the ledger instead of on paper. A request to
    # the central system is written down before it is sent, so a crash
    # between the central's answer and our commit is found at the next start.
    """
    CREATE UNIQUE INDEX tickets_day_display ON tickets(day, display);
    ALTER TABLE tickets ADD COLUMN service_zh TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN service_en TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN lease_id TEXT;
    CREATE TABLE ticket_requests (
        request_id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'abandoned'))
    );
    """,
    # 3: costs that do not grow with the ledger. A year of a busy hall is about
    # a million outbox rows, and COUNT(*) by state read all of them after every
    # batch, cycle and heartbeat. The triggers keep one counter per state in the
    # same transaction as the row change they count (a rolled-back or crashed
    # transaction takes its counter change with it), whichever code path writes
    # the outbox; this migration starts them from the rows already there. The
    # dispenser's start-up scan for interrupted requests reads only pending
    # ones, which the partial index holds (done requests never enter it).
    """
    CREATE TABLE outbox_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO outbox_counts (state, n)
        SELECT s.state, (SELECT COUNT(*) FROM outbox WHERE outbox.state = s.state)
        FROM (SELECT 'pending' AS state UNION ALL SELECT 'delivered' UNION ALL SELECT 'dead') AS s;
    CREATE TRIGGER outbox_count_insert AFTER INSERT ON outbox BEGIN
        UPDATE outbox_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER outbox_count_update AFTER UPDATE OF state ON outbox WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state;
        UPDATE outbox_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER outbox_count_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    CREATE INDEX ticket_requests_pending ON ticket_requests(created_at) WHERE state = 'pending';
    """,
    # 4: appointments (预约签到). A check-in's ticket carries the central's
    # booking id. Its number may be in the hall-wide appointment series (Y001)
    # while its category is the booked service, so the first schema's
    # UNIQUE (day, category, number, priority) would refuse Y001 beside A001:
    # the table is rebuilt without it. (day, display) stays unique: that is
    # the rule (one printed number once per day, whatever its series).
    """
    CREATE TABLE tickets_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        request_id TEXT NOT NULL UNIQUE,
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        number INTEGER NOT NULL,
        display TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL CHECK (source IN ('online', 'lease', 'offline')),
        people_ahead INTEGER,
        est_wait_s INTEGER,
        issued_at TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        print_state TEXT NOT NULL DEFAULT 'pending',
        print_count INTEGER NOT NULL DEFAULT 0,
        service_zh TEXT NOT NULL DEFAULT '',
        service_en TEXT NOT NULL DEFAULT '',
        lease_id TEXT,
        appointment TEXT
    );
    INSERT INTO tickets_v4 (id, uuid, request_id, day, category, number, display, priority, source, people_ahead,
        est_wait_s, issued_at, boot_id, print_state, print_count, service_zh, service_en, lease_id)
        SELECT id, uuid, request_id, day, category, number, display, priority, source, people_ahead,
        est_wait_s, issued_at, boot_id, print_state, print_count, service_zh, service_en, lease_id FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_v4 RENAME TO tickets;
    CREATE UNIQUE INDEX tickets_day_display ON tickets(day, display);
    CREATE INDEX tickets_day_category ON tickets(day, category);
    """,
    # 5: tickets taken by ID card carry the person as an HMAC under the hall key
    # (kiosk/core/privacy.py person_key), never the ID number: the per-person
    # rules read this device's own tickets of a person and day when offline.
    """
    ALTER TABLE tickets ADD COLUMN person TEXT;
    CREATE INDEX tickets_person ON tickets(person, day) WHERE person IS NOT NULL;
    """,
]


# Indexes that only speed up reads, made at every open when missing (IF NOT
# EXISTS costs a schema lookup): no schema version of their own, so a release
# that lacks one still opens the ledger, and branches adding migrations do not
# collide over a number. The dispenser's start-up look for tickets committed
# but not printed before a crash reads only these rows (a few at most).
READ_INDEXES: list[str] = [
    "CREATE INDEX IF NOT EXISTS tickets_print_pending ON tickets(id) WHERE print_state = 'pending'",
]


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one by one.

    Not executescript(): it commits the open transaction first, and a
    migration must be one transaction with its user_version. A plain split on
    ";" would cut a trigger's body, so pieces are joined until SQLite calls
    the statement complete.
    """
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                yield buf
            buf = ""
    if buf.strip(" \n\t;"):
        raise LedgerError(f"incomplete statement at the end of a migration: {buf.strip()[:80]}")


# The start-up check reads this many newest rows of each growing table.
START_CHECK_ROWS = 200
# Rows per table per prune transaction: short enough that a writer waits little.
PRUNE_BATCH = 500
# Tables that stay small whatever the ledger's age (a row per key, state, day
# and category, or lease): SQLite's quick_check of each is cheap.
SMALL_TABLES = ("meta", "outbox_counts", "day_counters", "leases")
GROWING_TABLES = ("outbox", "tickets", "ticket_requests", "ratings", "dead_letters")


@dataclass
class PruneResult:
    """Rows removed by one prune pass, per table."""

    outbox: int = 0
    tickets: int = 0
    ticket_requests: int = 0
    ratings: int = 0

    @property
    def total(self) -> int:
        return self.outbox + self.tickets + self.ticket_requests + self.ratings


class OutboxStats(TypedDict):
    pending: int
    delivered: int
    dead: int
    oldest_pending_age_s: float | None


@dataclass(frozen=True)
class OutboxEvent:
    uuid: str
    kind: str
    body: dict[str, Any]  # a JSON object
    created_at: str
    boot_id: str
    seq: int
    attempts: int
    last_error: str | None

    def wire(self, device_id: str) -> dict[str, Any]:
        """The event as it travels: its UUID is the idempotency key, so it never changes."""
        return {
            "id": self.uuid,
            "kind": self.kind,
            "device_id": device_id,
            "created_at": self.created_at,
            "boot_id": self.boot_id,
            "seq": self.seq,
            "body": self.body,
        }


def _before(at: datetime, cutoff: datetime) -> bool:
    if at.tzinfo is None:  # a naive stamp is local wall time, as written
        at = at.astimezone()
    return at < cutoff


def _older_prefix(rows: list[sqlite3.Row], column: str, cutoff: datetime) -> list[sqlite3.Row]:
    """The leading rows (in write order) stamped before cutoff; stops at the first newer or unreadable one.

    Rows are read in write order, so the first newer one ends the old part (a
    wrong clock can put an old stamp later: it waits for the next pass).
    """
    out = []
    for r in rows:
        try:
            at = datetime.fromisoformat(r[column])
        except (TypeError, ValueError):
            break
        if not _before(at, cutoff):
            break
        out.append(r)
    return out


class LedgerError(Exception):
    pass


class Ledger:
    """One connection per thread; writes serialised by SQLite's own lock."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.boot_id = boot_id()
        self._migrate()

    # -- connections and transactions ------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a
            # transaction means exactly what the code says.
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolled back on any exception."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise LedgerError(
                f"ledger {self.path} has schema {version}, newer than this software "
                f"({len(MIGRATIONS)}): install the newer version or restore a backup"
            )
        for i in range(version, len(MIGRATIONS)):
            with self.transaction() as tx:
                for stmt in statements(MIGRATIONS[i]):
                    tx.execute(stmt)
                tx.execute(f"PRAGMA user_version = {i + 1}")
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        missing = [s for s in READ_INDEXES if s.split(" EXISTS ")[1].split()[0] not in have]
        if missing:  # no write (no lock) at an open that needs none
            with self.transaction() as tx:
                for stmt in missing:
                    tx.execute(stmt)

    @property
    def schema_version(self) -> int:
        version: int = self._conn().execute("PRAGMA user_version").fetchone()[0]
        return version

    def integrity_ok(self) -> bool:
        """The full check (every index against its table): minutes on a year-old
        ledger on an SD card, so it runs on a schedule, never on the start path."""
        answer: str = self._conn().execute("PRAGMA integrity_check").fetchone()[0]
        return answer == "ok"

    def quick_ok(self) -> bool:
        """Page and record structure of the whole file without the index
        cross-check: every page is read, so it grows with the ledger and runs
        on the schedule's thread, not at start."""
        answer: str = self._conn().execute("PRAGMA quick_check").fetchone()[0]
        return answer == "ok"

    def start_check(self, recent: int = START_CHECK_ROWS) -> str | None:
        """The start-up check, of a cost that does not grow with the ledger.

        A start after a power cut or a crash must find damage where it is
        likely: in what was written last. The small tables get SQLite's own
        quick_check (limited to the table); the growing tables are read back
        along their newest rows and through each index a service uses, which
        reads the pages the last writes touched (an append-only table's newest
        rows live on its right-most pages). The whole file is checked by the
        daily quick check and the weekly full check off the start path.
        Returns None when intact, else what SQLite said.
        """
        conn = self._conn()
        try:
            for table in SMALL_TABLES:
                answer = conn.execute(f"PRAGMA quick_check({table})").fetchone()[0]
                if answer != "ok":
                    return f"{table}: {answer}"
            for table in GROWING_TABLES:
                conn.execute(f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT ?", (recent,)).fetchall()
            # The indexes the start and the hot paths read.
            conn.execute("SELECT seq FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?", (recent,)).fetchall()
            conn.execute("SELECT seq FROM outbox WHERE state = 'delivered' ORDER BY seq LIMIT ?", (recent,)).fetchall()
            conn.execute("SELECT request_id FROM ticket_requests WHERE state = 'pending'").fetchall()
            conn.execute(
                "SELECT day, display FROM tickets ORDER BY day DESC, display DESC LIMIT ?", (recent,)
            ).fetchall()
        except sqlite3.DatabaseError as e:
            return str(e)
        return None

    # -- outbox -----------------------------------------------------------
    def add_event(self, tx: sqlite3.Connection, kind: str, body: dict[str, Any]) -> str:
        """Queue an event inside the caller's transaction; returns its UUID."""
        eid = str(uuidlib.uuid4())
        tx.execute(
            "INSERT INTO outbox (uuid, kind, body, created_at, boot_id) VALUES (?, ?, ?, ?, ?)",
            (eid, kind, json.dumps(body, ensure_ascii=False, sort_keys=True), wall_now(), self.boot_id),
        )
        return eid

    def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        rows = self.query("SELECT * FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,))
        return [
            OutboxEvent(
                r["uuid"],
                r["kind"],
                json.loads(r["body"]),
                r["created_at"],
                r["boot_id"],
                r["seq"],
                r["attempts"],
                r["last_error"],
            )
            for r in rows
        ]

    def mark_delivered(self, uuids: Iterable[str]) -> None:
        now = wall_now()
        with self.transaction() as tx:
            tx.executemany(
                "UPDATE outbox SET state = 'delivered', delivered_at = ?, last_error = NULL "
                "WHERE uuid = ? AND state = 'pending'",
                [(now, u) for u in uuids],
            )

    def mark_dead(self, uuid: str, reason: str) -> None:
        with self.transaction() as tx:
            row = tx.execute("SELECT kind, body FROM outbox WHERE uuid = ?", (uuid,)).fetchone()
            if row is None:
                return
            tx.execute("UPDATE outbox SET state = 'dead', last_error = ? WHERE uuid = ?", (reason, uuid))
            tx.execute(
                "INSERT OR REPLACE INTO dead_letters (uuid, kind, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)",
                (uuid, row["kind"], row["body"], reason, wall_now()),
            )

    def note_attempt(self, uuids: Iterable[str], error: str | None) -> None:
        with self.transaction() as tx:
            tx.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE uuid = ?", [(error, u) for u in uuids]
            )

    def outbox_stats(self) -> OutboxStats:
        # The counters the triggers of migration 3 keep: three rows, however large the outbox.
        n = {r["state"]: r["n"] for r in self.query("SELECT state, n FROM outbox_counts")}
        oldest = self.query("SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1")
        age = None
        if oldest:
            try:
                age = max(0.0, time.time() - datetime.fromisoformat(oldest[0]["created_at"]).timestamp())
            except ValueError:
                age = None
        return {
            "pending": n.get("pending", 0),
            "delivered": n.get("delivered", 0),
            "dead": n.get("dead", 0),
            "oldest_pending_age_s": age,
        }

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM dead_letters ORDER BY dead_at DESC LIMIT ?", (limit,))
        return [
            {
                "uuid": r["uuid"],
                "kind": r["kind"],
                "body": json.loads(r["body"]),
                "reason": r["reason"],
                "dead_at": r["dead_at"],
            }
            for r in rows
        ]

    # -- retention ------------------------------------------------------------
    def prune_batch(self, cutoff: datetime, batch: int = PRUNE_BATCH) -> PruneResult:
        """Remove up to `batch` rows per table of what is older than `cutoff` and delivered.

        Each table is its own short transaction, so a dispenser or pad writing
        at the same time waits one batch at most. Never removed: an outbox
        event that is pending or dead, a ticket or rating whose event is
        pending (a dead one's record is kept whole in dead_letters), a ticket
        request still pending. Ratings go only from the start of the
        chain, and the chain's checkpoint (count and hash of the last record
        removed) moves in the same transaction, so what remains still verifies.
        Returns what was removed; a pass ends when a call removes nothing.
        """
        out = PruneResult()
        with self.transaction() as tx:
            rows = tx.execute(
                "SELECT seq, created_at FROM outbox WHERE state = 'delivered' ORDER BY seq LIMIT ?", (batch,)
            ).fetchall()
            old = [r["seq"] for r in _older_prefix(rows, "created_at", cutoff)]
            tx.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in old])
            out.outbox = len(old)
        held = self._undelivered_uuids()
        with self.transaction() as tx:
            rows = tx.execute("SELECT id, uuid, issued_at FROM tickets ORDER BY id LIMIT ?", (batch,)).fetchall()
            old = [r["id"] for r in _older_prefix(rows, "issued_at", cutoff) if r["uuid"] not in held]
            tx.executemany("DELETE FROM tickets WHERE id = ?", [(i,) for i in old])
            out.tickets = len(old)
            rows = tx.execute(
                "SELECT rowid, created_at, state FROM ticket_requests ORDER BY rowid LIMIT ?", (batch,)
            ).fetchall()
            old = [r["rowid"] for r in _older_prefix(rows, "created_at", cutoff) if r["state"] != "pending"]
            tx.executemany("DELETE FROM ticket_requests WHERE rowid = ?", [(i,) for i in old])
            out.ticket_requests = len(old)
        with self.transaction() as tx:
            rows = tx.execute("SELECT seq, uuid, body, hash FROM ratings ORDER BY seq LIMIT ?", (batch,)).fetchall()
            last = None
            for r in rows:
                try:
                    body = json.loads(r["body"])
                    decided = datetime.fromisoformat(body["decided_at"])
                    index = int(body["chain_index"])
                except (ValueError, KeyError, TypeError):
                    break  # unreadable: left for verify-ratings to name, never pruned
                if r["uuid"] in held or not _before(decided, cutoff):
                    break  # the chain is pruned from its start only: stop at the first to keep
                last = (r["seq"], index, r["hash"])
            if last is not None:
                seq, index, h = last
                n = tx.execute("DELETE FROM ratings WHERE seq <= ?", (seq,)).rowcount
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (keys.RATING_CHAIN_CHECKPOINT, f"{index + 1}:{h}"),
                )
                out.ratings = n
        return out

    def _undelivered_uuids(self) -> set[str]:
        """The record uuids named by events still pending: their records stay.

        A dead event (refused by the central for good) is never pruned itself:
        its outbox row and its copy in dead_letters, which holds the whole
        record (a rating's body with its hash), stay for the technician. Its
        record in tickets or ratings may go with the rest, or one refused rating
        would stop the chain's pruning for good.
        """
        rows = self.query(
            "SELECT json_extract(body, '$.uuid') AS u, json_extract(body, '$.ticket_uuid') AS t FROM outbox "
            "WHERE state = 'pending' AND json_valid(body)"
        )
        # A rating event carries the record's uuid, a ticket event its ticket_uuid.
        return {u for r in rows for u in (r["u"], r["t"]) if u}

    # -- small key/value facts (last sync time, ...) -----------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
