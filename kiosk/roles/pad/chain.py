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


def verify(rows: Iterable[sqlite3.Row], head: str | None) -> tuple[int, list[ChainProblem]]:
    """Walk rows (seq, uuid, session_id, body, prev_hash, hash) in seq order.

    Returns (records checked, problems). An empty problem list means intact.
    """
    problems: list[ChainProblem] = []
    prev = GENESIS
    n = 0
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
    if head is not None:
        want = f"{n}:{prev}"
        if head != want:
            count = head.split(":", 1)[0]
            problems.append(
                ChainProblem(
                    None,
                    None,
                    f"the ledger recorded {count} records ending in "
                    f"{head.split(':', 1)[-1][:12]}…, the table holds {n} ending in "
                    f"{prev[:12]}…: the newest records were deleted or edited",
                )
            )
    elif n:
        problems.append(ChainProblem(None, None, "the chain head is missing from the ledger meta table"))
    return n, problems
