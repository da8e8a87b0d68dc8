"""Cache for what can be fetched again: central config, staff cards, recent lookups.

sqlitedict with a JSON codec. Its default codec deserialises Python objects,
which would let anyone who can write the cache file run code on the device;
JSON cannot.
Losing this file loses nothing: the sync worker fills it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Cache:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = SqliteDict(str(path), tablename="cache", autocommit=True, encode=_encode, decode=json.loads)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._db[key]
        except KeyError:
            return default
        except (ValueError, TypeError):
            # A damaged entry is as good as absent: it will be fetched again.
            return default

    def set(self, key: str, value: Any) -> None:
        self._db[key] = value

    def delete(self, key: str) -> None:
        self._db.pop(key, None)

    def keys(self) -> list[str]:
        return list(self._db.keys())

    def __iter__(self) -> Iterator[str]:
        # A snapshot: callers delete entries while they walk the keys (lookup pruning).
        return iter(self.keys())

    def close(self) -> None:
        self._db.close()
