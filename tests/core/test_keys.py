"""Cache keys, meta keys and storage file names are spelt in kiosk/core/keys.py only.

A copy of one of them somewhere else is how a rename used to leave a reader
with nothing, so the source tree is searched for the literal values: a new
copy fails here, with the place and the name to import instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

from kiosk.core import keys
from tests.helpers import ROOT

SEARCHED = ("kiosk", "devices", "screens", "tests", "bench")
KEYS_FILE = ROOT / "kiosk" / "core" / "keys.py"

# Values that are also ordinary words elsewhere ("kivy" is a Kivy config
# section, "last_sync" a field of the heartbeat and of `kiosk status --json`):
# for these only a use as a storage name counts, i.e. `path / "kivy"` or
# `ledger.get_meta("last_sync")`.
COMMON_WORDS = {keys.KIVY_HOME_DIR, keys.LAST_SYNC}
META_CALLS = {"get_meta", "set_meta"}
# The demo's folder and config names are plain words that tests use for files of their
# own (`tmp_path / "central"`); a copy of them is not a second spelling of the demo's.
UNCHECKED = {keys.DEMO_DEVICE_DIR, keys.DEMO_CENTRAL_DIR, keys.DEMO_CONFIG_FILE}


def _defined() -> dict[str, str]:
    return {
        value: name
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, str) and value not in UNCHECKED
    }


def _storage_uses(tree: ast.AST):
    """String constants used as a path part or as the key of a ledger/cache call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            yield node.right
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in META_CALLS
            and node.args
        ):
            yield node.args[0]


def _literal_copies(path: Path, defined: dict[str, str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    # every string constant, f-string parts included ("staff.card." in f"staff.card.{w}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in defined
            and node.value not in COMMON_WORDS
        ):
            found.append((node.lineno, node.value))
    for node in _storage_uses(tree):
        if isinstance(node, ast.Constant) and node.value in COMMON_WORDS:
            found.append((node.lineno, node.value))
    # code run in a child process is a string: look inside strings that parse as Python
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            try:
                inner = ast.parse(node.value)
            except SyntaxError:
                continue
            for sub in ast.walk(inner):
                if isinstance(sub, ast.Constant) and sub.value in defined:
                    found.append((node.lineno + sub.lineno - 1, sub.value))
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [
        f"{rel}:{line}: {value!r} is keys.{defined[value]}: import it from kiosk.core.keys"
        for line, value in sorted(set(found))
    ]


def test_every_key_and_file_name_is_spelt_only_in_keys_py():
    defined = _defined()
    problems = []
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path != KEYS_FILE and ".venv" not in path.parts:
                problems += _literal_copies(path, defined)
    assert not problems, "\n".join(problems)


def test_the_search_finds_a_copy(tmp_path):
    # The guard itself must be able to fail: each way of spelling a key is caught.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "\n".join(
            [
                'A = "central.config"',
                'def k(w): return f"staff.card.{w}"',
                'p = base / "kivy"',
                'ledger.get_meta("last_sync")',
                'CHILD = """\nx = d / "ledger.sqlite3"\n"""',
                'heartbeat = {"last_sync": 1}',  # a field name, not storage: not reported
                'KivyConfig.set("kivy", "log_level", "info")',  # a config section: not reported
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    found = _literal_copies(sample, _defined())
    assert [f.split(": ", 1)[1].split(" ")[0] for f in found] == [
        "'central.config'",
        "'staff.card.'",
        "'kivy'",
        "'last_sync'",
        "'ledger.sqlite3'",
    ]


def test_keys_are_distinct():
    values = [v for n, v in vars(keys).items() if n.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values))
