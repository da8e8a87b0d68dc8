"""Allowed values are defined once (kiosk/core/ports.py): check-config accepts what the adapters implement."""

import pytest

from devices import buttons, escpos
from kiosk.cli import main
from kiosk.core import ports
from kiosk.core.config import load_config
from tests.helpers import write_config


@pytest.mark.parametrize("profile", list(escpos.PROFILES))
def test_every_profile_the_encoder_knows_passes_check_config(tmp_path, capsys, profile):
    path = write_config(tmp_path, {"printer": {"profile": profile}})
    assert main(["check-config", str(path)]) == 0, capsys.readouterr()
    assert load_config(str(path)).printer.profile == profile


def test_the_encoder_implements_every_profile_check_config_accepts():
    for name in ports.PRINTER_PROFILES:
        assert escpos.get_profile(name).name == name


@pytest.mark.parametrize("factory", ports.PIN_FACTORIES)
def test_every_pin_factory_name_passes_check_config(tmp_path, factory):
    cfg = load_config(str(write_config(tmp_path, {"gpio": {"pin_factory": factory}})))
    assert cfg.gpio.pin_factory == factory and not cfg.warnings


def test_the_old_native_value_is_still_read_with_a_warning_naming_the_new_one(tmp_path, capsys):
    path = write_config(tmp_path, {"gpio": {"pin_factory": "native"}})
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "gpio.pin_factory" in out and "pin_factory = 'default'" in out
    assert buttons.make_pin_factory("native") is buttons.make_pin_factory("default") is None


def test_a_gpiozero_factory_without_its_library_tells_what_to_install():
    try:
        import pigpio  # noqa: F401

        pytest.skip("pigpio is installed here")
    except ImportError:
        pass
    with pytest.raises(buttons.GPIOSetupError, match="python3-pigpio"):
        buttons.make_pin_factory("pigpio")


@pytest.mark.parametrize(
    "key, values",
    [
        ("printer.baudrate", ports.BAUD_RATES),
        ("scanner.baudrate", ports.BAUD_RATES),
        ("printer.backend", ports.PRINTER_BACKENDS),
        ("scanner.backend", ports.SCANNER_BACKENDS),
        ("printer.flow_control", ("profile", *ports.PRINTER_FLOW_CONTROLS)),
        ("printer.on_unknown_status", ports.PRINTER_ON_UNKNOWN_STATUS),
    ],
)
def test_the_validator_takes_its_lists_from_ports(tmp_path, key, values):
    section, name = key.split(".")
    for v in values:
        extra = {"port": "/dev/null", **({"path": str(tmp_path / "out.bin")} if section == "printer" else {})}
        cfg = load_config(str(write_config(tmp_path, {section: {name: v, **extra}})))
        assert getattr(getattr(cfg, section), name) == v


def test_paper_widths():
    assert escpos.get_profile("default").dots_per_line == ports.PAPER_DOTS[80]
    assert escpos.get_profile("default", dots_per_line=ports.PAPER_DOTS[58]).columns == 32


@pytest.mark.parametrize("backend", ports.PRINTER_BACKENDS)
def test_wiring_builds_every_printer_backend_check_config_accepts(tmp_path, backend):
    from kiosk.wiring import build_printer

    printer = {"backend": backend, "port": "/dev/kiosk-printer", "path": str(tmp_path / "out.bin")}
    worker = build_printer(load_config(str(write_config(tmp_path, {"printer": printer}))))
    assert backend in type(worker.printer.backend).__name__.lower()
    worker.close()


def test_flow_control_comes_from_the_profile_unless_the_config_sets_it(tmp_path):
    from kiosk.wiring import build_printer

    for setting, expected in (("profile", escpos.DEFAULT_PROFILE.flow_control), ("rtscts", "rtscts")):
        printer = {"backend": "serial", "port": "/dev/kiosk-printer", "flow_control": setting, "write_timeout": 2.5}
        worker = build_printer(load_config(str(write_config(tmp_path, {"printer": printer}))))
        assert (worker.printer.backend.flow_control, worker.printer.backend.write_timeout) == (expected, 2.5)
        worker.close()
