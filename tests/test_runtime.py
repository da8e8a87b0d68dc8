"""The typed Runtime: building starts nothing, start() starts every part, stop() joins them."""

from __future__ import annotations

import threading

import pytest

from kiosk.core.config import load_config
from kiosk.runtime import DispenserRole, LookupRole, PadRole
from kiosk.wiring import build_runtime
from tests.helpers import write_config


def _threads() -> set[str]:
    # sqlitedict serves the cache from a connection thread of its own: storage, not a worker.
    from sqlitedict import SqliteMultithread

    return {t.name for t in threading.enumerate() if t.is_alive() and not isinstance(t, SqliteMultithread)}


def test_building_starts_nothing_start_starts_every_part_and_stop_joins_them(tmp_path, central):
    token = central.issue_token("demo-kiosk")
    cfg = load_config(write_config(tmp_path, {"central": {"url": central.url}}, token=token))
    before = _threads()
    rt = build_runtime(cfg)
    try:
        assert _threads() == before  # no worker, no port, no pin
        assert isinstance(rt.dispenser, DispenserRole) and isinstance(rt.lookup, LookupRole)
        assert isinstance(rt.pad, PadRole) and rt.sync is not None and rt.client is not None
        assert {"sync", "printer", "dispenser", "scanner", "pad"} <= set(rt.part_names)
        rt.start()
        started = _threads() - before
        assert {"sync", "printer-worker", "tickets-refresh", "pad-watcher"} <= started
    finally:
        rt.stop()
    assert not {"sync", "printer-worker", "tickets-refresh"} & _threads()
    rt.stop()  # twice is harmless (the app's on_stop and a signal may both stop it)


def test_start_only_starts_the_named_parts(tmp_path, central):
    token = central.issue_token("demo-kiosk")
    cfg = load_config(write_config(tmp_path, {"central": {"url": central.url}}, token=token))
    before = _threads()
    rt = build_runtime(cfg)
    try:
        rt.start(only=["printer"])
        started = _threads() - before
        assert "printer-worker" in started and "sync" not in started and "pad-watcher" not in started
    finally:
        rt.stop()


def test_a_device_without_a_role_has_no_bundle_for_it(tmp_path):
    cfg = load_config(write_config(tmp_path, {"device": {"roles": ["lookup"]}}))
    rt = build_runtime(cfg)
    try:
        assert rt.lookup is not None and rt.dispenser is None and rt.pad is None
        assert rt.printer is None and rt.button_banks == []
    finally:
        rt.stop()


def test_a_gpio_failure_on_the_dispenser_is_a_line_naming_the_file_and_key(tmp_path, caplog):
    """Issue 15.11: a dispenser whose button pins cannot be set up still issues
    tickets from the touchscreen; the log says which file and key to check."""
    import logging

    try:
        import pigpio  # noqa: F401

        pytest.skip("pigpio is installed here")
    except ImportError:
        pass
    from kiosk.core.config import load_config
    from kiosk.wiring import build_runtime

    path = write_config(
        tmp_path,
        {
            "device": {"roles": ["dispenser"]},
            "gpio": {"pin_factory": "pigpio"},
            "dispenser": {"button_pins": {"A": 17}},
        },
    )
    rt = build_runtime(load_config(path))
    caplog.set_level(logging.ERROR, logger="kiosk")
    try:
        rt.start(only=["dispenser buttons"])
        assert rt.dispenser.buttons is None
        [line] = [r.getMessage() for r in caplog.records if "button_pins" in r.getMessage()]
        assert str(path) in line and "touch only" in line and "pigpio" in line
    finally:
        rt.stop()
