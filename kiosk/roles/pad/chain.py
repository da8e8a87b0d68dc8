"""The hash chain over rating records, and its verification.

Each record's body carries ``prev_hash``, the hash of the record before it
(the first record chains to GENESIS), and ``chain_index``, its position.
A record's hash is SHA-256 over its canonical JSON body, so changing any
field of any record, or deleting one, breaks the chain at a place a
technician can name. The newest hash and the count are also kept in the
ledger's meta table, written in the same transaction as each record, so
deleting the newest records is caught too. (Whoever can rewrite the whole
file can rewrite the chain: the central system, which holds every record
it received, is the final witness.)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(body: dict[str, Any]) -> str:
    """One text per body: sorted keys, no spaces, UTF-8 kept (not \\u escapes)."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def record_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    record: str | None  # the record's uuid, when known
    what: str

    def line(self) -> str:
        where = f"record seq {self.seq} ({self.record})" if self.seq is not None else "chain head"
        return f"{where}: {self.what}"


def parse_checkpoint(value: str | None) -> tuple[int, str]:
    """(records pruned, hash of the last pruned) from the ledger's checkpoint; (0, GENESIS) when none.

    Retention (kiosk/core/ledger.py prune_batch) removes delivered records from
    the start of the chain and writes this in the same transaction, so what
    remains in the table is proved from the checkpoint on. Raises ValueError on
    a checkpoint that is not "<count>:<64 hex digits>".
    """
    if not value:
        return 0, GENESIS
    count, _, h = value.partition(":")
    if not count.isdigit() or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"the chain checkpoint {value[:20]!r} is not <count>:<sha256>")
    return int(count), h


def verify(
    rows: Iterable[sqlite3.Row], head: str | None, checkpoint: str | None = None
) -> tuple[int, list[ChainProblem]]:
    """Walk rows (seq, uuid, session_id, body, prev_hash, hash) in seq order.

    With a checkpoint, the first row must chain to its hash and carry its count
    as chain_index. Returns (records checked, problems). An empty problem list means intact.
    """
    problems: list[ChainProblem] = []
    try:
        start, prev = parse_checkpoint(checkpoint)
    except ValueError as e:
        return 0, [ChainProblem(None, None, str(e))]
    n = start
    for r in rows:
        seq, rid = r["seq"], r["uuid"]
        try:
            body = json.loads(r["body"])
        except ValueError:
            problems.append(ChainProblem(seq, rid, "body is not valid JSON (edited by hand?)"))
            prev = r["hash"]
            n += 1
            continue
        if record_hash(body) != r["hash"]:
            problems.append(ChainProblem(seq, rid, "content does not match its hash: the record was edited"))
        if body.get("prev_hash") != r["prev_hash"]:
            problems.append(ChainProblem(seq, rid, "prev_hash column differs from the one in the body: edited"))
        if r["prev_hash"] != prev:
            problems.append(
                ChainProblem(
                    seq, rid, "does not chain to the record before it: a record before it was deleted or edited"
                )
            )
        if body.get("chain_index") != n:
            problems.append(
                ChainProblem(
                    seq,
                    rid,
                    f"is number {n} in the chain but says {body.get('chain_index')}: a record was deleted or inserted",
                )
            )
        if body.get("uuid") != rid or body.get("session_id") != r["session_id"]:
            problems.append(ChainProblem(seq, rid, "uuid or session_id column differs from the body: edited"))
        prev = r["hash"]
        n += 1
    checked = n - start
    if head is not None:
        want = f"{n}:{prev}"
        if head != want:
            count = head.split(":", 1)[0]
            problems.append(
                ChainProblem(
                    None,
                    None,
                    f"the ledger recorded {count} records ending in "
                    f"{head.split(':', 1)[-1][:12]}…, the table holds up to {n} ending in "
                    f"{prev[:12]}…: the newest records were deleted or edited",
                )
            )
    elif n:
        problems.append(ChainProblem(None, None, "the chain head is missing from the ledger meta table"))
    return checked, problems
