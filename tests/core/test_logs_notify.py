"""The systemd notify protocol over a real unix datagram socket (path and abstract)."""

import os
import socket
import uuid

import pytest

from kiosk.core import notify


@pytest.fixture
def listener(tmp_path, monkeypatch, request):
    kind = getattr(request, "param", "path")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "abstract":
        name = "kiosk-test-" + uuid.uuid4().hex
        s.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    else:
        path = str(tmp_path / "notify.sock")
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    s.settimeout(2)
    yield s
    s.close()


@pytest.mark.parametrize("listener", ["path", "abstract"], indirect=True)
def test_ready_watchdog_and_status_arrive_as_datagrams(listener):
    assert notify.ready("serving")
    assert listener.recv(4096) == b"READY=1\nSTATUS=serving"
    assert notify.watchdog()
    assert listener.recv(4096) == b"WATCHDOG=1"
    assert notify.status("self-check: 1 warning")
    assert listener.recv(4096) == b"STATUS=self-check: 1 warning"


def test_without_systemd_it_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False


def test_a_dead_socket_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert notify.watchdog() is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert notify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert notify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert notify.watchdog_interval() is None
