"""The composition root: a Config in, a typed Runtime out.

The only module of kiosk/ that imports devices/: it chooses each adapter's
backend from the config and hands the roles what they need through small
ports (a callable, an object with ``submit`` / ``check_status`` ...). A role
never sees a device class; a device never sees a role.

Building starts nothing. Device objects that would claim a resource at
construction (gpiozero pins) are made in their part's start, so that
``kiosk status`` or a screenshot on a running device does not fight the
kiosk for its pins, and a serial port is opened by its worker only once started.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kiosk.core import keys
from kiosk.core.cache import Cache
from kiosk.core.config import Config, ConfigError
from kiosk.core.handoff import Handoff
from kiosk.core.ledger import Ledger
from kiosk.core.time import set_hall_zone
from kiosk.runtime import SYNC, DispenserRole, LookupRole, PadRole, Runtime

log = logging.getLogger("kiosk.wiring")


def build_runtime(cfg: Config, *, demo: bool = False) -> Runtime:
    """Core parts, the central client and sync worker when there is a token, then one bundle per role."""
    return _build(cfg, demo=demo, central=True)


def build_preview_runtime(cfg: Config, scratch: Path) -> Runtime:
    """The device's runtime for a screenshot or preview, touching nothing real.

    Its ledger is a fresh one in ``scratch``, with a copy of the device's cache
    (so the screens show the central's categories and staff card as the device
    has them); no central client (a preview must not lease numbers or post
    anything); simulated printer and scanner (the real ones may be in use by the
    running kiosk); no GPIO, a silent voice, no metrics."""
    import copy
    import shutil

    preview = copy.deepcopy(cfg)
    src = Path(cfg.storage.dir) / keys.CACHE_FILE
    scratch.mkdir(parents=True, exist_ok=True)
    if src.exists():
        shutil.copyfile(src, scratch / keys.CACHE_FILE)
    preview.storage.dir = str(scratch)
    preview.printer.backend = "sim"
    preview.scanner.backend = "sim"
    if preview.idcard.backend != "none":
        preview.idcard.backend = "sim"  # the screen offers 刷身份证取号 as on the device
    preview.gpio.pin_factory = "mock"
    # A voice as configured, but one that only records: the render shows what the
    # device offers (朗读 where it speaks) and nothing is played.
    preview.voice.backend = "sim"
    preview.voice.pack = cfg.voice.pack or str(Path(cfg.storage.dir) / "voice")  # the device's own pack
    preview.metrics.textfile = ""
    return _build(preview, demo=False, central=False)


def _build(cfg: Config, *, demo: bool, central: bool) -> Runtime:
    set_hall_zone(cfg.device.timezone)  # records, hours and the header clock read it
    storage = Path(cfg.storage.dir)
    storage.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(storage / keys.LEDGER_FILE)
    try:
        cache = Cache(storage / keys.CACHE_FILE)
    except BaseException:
        ledger.close()
        raise
    rt = Runtime(cfg, ledger, cache, demo=demo)
    try:
        _add_storage(rt, retention=central)
        if central:
            _connect_central(rt)
        else:
            rt.central_problem = "preview: no central"
        for role in rt.roles:
            ROLE_BUILDERS[role](rt)
        _add_metrics(rt)
        _add_voice(rt)
        _add_release(rt)
    except BaseException:
        rt.stop()
        raise
    return rt


def _add_release(rt: Runtime) -> None:
    """The heartbeat says how the last update ended (kept, or rolled back and why)."""
    from kiosk.release.releases import heartbeat_part, release_root

    root = release_root()
    rt.health_parts["release"] = lambda: heartbeat_part(root)


def _add_storage(rt: Runtime, retention: bool) -> None:
    """The low-disk guard the services ask before new work, and the retention job (not in previews)."""
    from kiosk.core.storage import DiskGuard, RetentionJob

    s = rt.cfg.storage
    rt.disk = DiskGuard(s.dir, s.min_free_mb)
    rt.health_parts["storage"] = rt.disk.report
    if retention:
        job = RetentionJob(rt.ledger, s.retention_days)
        rt.add_part("retention", job.start, job.stop)


def _connect_central(rt: Runtime) -> None:
    """Client and sync worker; without a token the device still works offline."""
    cfg = rt.cfg
    try:
        cfg.read_token()  # no token, no central: the HTTP stack is not even imported (start-up time, memory)
    except ConfigError as e:
        rt.central_problem = "; ".join(p.what + " (" + p.fix + ")" for p in e.problems)
        log.warning("working offline: %s", rt.central_problem)
        return
    from kiosk.sync.client import CentralClient
    from kiosk.sync.worker import SyncWorker

    try:
        client = CentralClient.from_config(cfg)
    except ConfigError as e:
        rt.central_problem = "; ".join(p.what + " (" + p.fix + ")" for p in e.problems)
        log.warning("working offline: %s", rt.central_problem)
        return
    except ValueError as e:  # plain http without central.allow_http
        rt.central_problem = str(e)
        log.warning("working offline: %s", rt.central_problem)
        return
    rt.client = client
    rt.health_parts["central_link"] = client.breaker.state  # offline at once after unanswered calls
    rt.sync = SyncWorker(
        rt.ledger,
        client,
        rt.cache,
        cfg.device.id,
        health=rt.health,
        interval=cfg.central.sync_interval,
        window=cfg.pad.window if "pad" in rt.roles else None,
        pull_queue="dispenser" in rt.roles,
        storage_dir=cfg.storage.dir,
    )
    rt.add_part("central", None, client.close)
    rt.add_part(SYNC, rt.sync.start, rt.sync.stop)


def _add_voice(rt: Runtime) -> None:
    """Spoken prompts: the voice pack and the configured player. No pack: silent, said once."""
    from devices.audio import AplayPlayer, SilentPlayer, SimPlayer
    from kiosk.core.voice import PackError, Voice, VoicePack

    v = rt.cfg.voice
    if not v.enabled or v.backend == "none":
        return
    folder = Path(v.pack) if v.pack else Path(rt.cfg.storage.dir) / "voice"
    try:
        pack: VoicePack | None = VoicePack.load(folder)
    except PackError as e:
        log.warning("voice off: %s", e)
        pack = None
    player: Any = (
        AplayPlayer(v.device) if v.backend == "aplay" else SimPlayer() if v.backend == "sim" else SilentPlayer()
    )
    rt.voice = Voice(pack, player, volume=v.volume, quiet_hours=v.quiet_hours)
    rt.add_part("voice", player.start, player.close)


def _add_metrics(rt: Runtime) -> None:
    """The node_exporter textfile, from the same report as the heartbeat (kiosk/sync/metrics.py)."""
    from kiosk.sync.heartbeat import health_report
    from kiosk.sync.metrics import MetricsWriter

    cfg = rt.cfg
    if not cfg.metrics.textfile:
        return
    storage = Path(cfg.storage.dir)

    def report() -> dict[str, Any]:
        return health_report(rt.ledger, cfg.device.id, rt.started_at, storage, rt.health)

    writer = MetricsWriter(cfg.metrics.textfile, report, interval=cfg.metrics.interval)
    rt.add_part("metrics", writer.start, writer.stop)


# ---- devices ------------------------------------------------------------------


def printer_font(cfg: Config) -> str | None:
    """The CJK font the printer's raster text and the ticket preview draw with.

    The same finder as the screens (kiosk/core/fonts.py): devices/ has none of
    its own. None when the device has no CJK font: the self-check's font row says what to install, and only
    raster Chinese (the "no-chinese" profile) fails, with the same advice."""
    from kiosk.core.fonts import FontMissing, find_cjk_font

    try:
        font: str | None = find_cjk_font(cfg.display.font, any_face=True)
    except FontMissing as e:
        log.warning("no font for printer raster text: %s", e)
        font = None
    return font


def build_printer(cfg: Config) -> Any:
    """The configured printer behind its worker thread (devices/printer.py); start() runs the thread."""
    from devices.printer import PrinterWorker, TicketPrinter

    backend = printer_backend(cfg)
    return PrinterWorker(TicketPrinter(backend, printer_profile(cfg), status_timeout=cfg.printer.status_timeout))


def printer_backend(cfg: Config) -> Any:
    """The configured printer's backend alone: write / status / query (the probe talks to it directly)."""
    from devices.printer import FileBackend, SerialBackend, SimBackend
    from devices.usb_printer import UsbBackend

    p = cfg.printer
    profile = printer_profile(cfg)
    backend: Any
    if p.backend == "serial":
        flow = profile.flow_control if p.flow_control == "profile" else p.flow_control
        backend = SerialBackend(
            p.port, p.baudrate, timeout=p.status_timeout, write_timeout=p.write_timeout, flow_control=flow
        )
    elif p.backend == "usb":
        backend = UsbBackend(p.port, write_timeout=p.write_timeout)
    elif p.backend == "file":
        backend = FileBackend(p.path)
    else:
        backend = SimBackend(keep_dir=sim_printed_dir(cfg))
    return backend


def printer_probe() -> Any:
    """devices/printer_probe.py: the probe slip, the status descriptions and the recommendation."""
    from devices import printer_probe as probe

    return probe


def sim_printed_dir(cfg: Config) -> Path:
    """Where the simulated printer keeps what it printed (the demo's tickets)."""
    return Path(cfg.storage.dir) / keys.SIM_PRINTED_DIR


def last_printed(cfg: Config) -> Path | None:
    """The last job the simulated printer of this device printed, or None."""
    from devices.printer import kept_jobs

    jobs = kept_jobs(sim_printed_dir(cfg))
    return jobs[-1] if jobs else None


def encode_document(doc: Any, cfg: Config) -> bytes:
    """The exact bytes this device's printer gets for a document (previews, benchmarks)."""
    from devices.escpos import encode

    return encode(doc, printer_profile(cfg))


def printer_profile(cfg: Config) -> Any:
    """The encoder's profile named in the config, drawing raster text with the device's CJK font."""
    from devices.escpos import get_profile
    from kiosk.core.ports import PAPER_DOTS

    return get_profile(
        cfg.printer.profile, font_path=printer_font(cfg), dots_per_line=PAPER_DOTS[cfg.printer.paper_width]
    )


def build_scanner(cfg: Config, publish: Any) -> Any:
    """The configured scanner delivering Scan objects to ``publish``. The wedge has no
    device of its own: the screen feeds it Kivy key events (rt.lookup.wedge)."""
    from devices.scanner import SerialScanner, SimScanner, WedgeAssembler
    from kiosk.roles.lookup.service import Scan

    def deliver(source: str) -> Any:
        def on_payload(p: Any) -> None:
            publish(Scan(p.text if p.valid else None, source, None if p.valid else (p.problem or "invalid")))

        return on_payload

    backend = cfg.scanner.backend
    if backend == "serial":
        # devices.scanner logs losing and regaining the port itself; the heartbeat reads .connected.
        return SerialScanner(
            cfg.scanner.port,
            cfg.scanner.baudrate,
            on_payload=deliver("serial"),
            idle_gap=cfg.scanner.idle_gap_ms / 1000,
        )
    if backend == "hid":
        from devices.hid_scanner import HidScanner

        # Read from its own event node, grabbed: the keystrokes never reach the UI.
        return HidScanner(cfg.scanner.port, deliver("hid"), idle_gap=cfg.scanner.idle_gap_ms / 1000)
    if backend == "wedge":
        return WedgeAssembler()
    return SimScanner(deliver("sim"))


def hid_problem(path: str) -> str | None:
    """The self-check's probe of a HID scanner's event node (devices/hid_scanner.py)."""
    from devices.hid_scanner import node_problem

    return node_problem(path)


def make_pin_factory(name: str, workdir: str | None = None) -> Any:
    """gpiozero's pin factory; lgpio's pipe files go to ``workdir`` (the storage folder)."""
    from devices.buttons import make_pin_factory as make

    return make(name, workdir=workdir)


def claim_problems(cfg: Config, pins: dict[int, str]) -> list[str]:
    """The self-check's probe of pins nobody holds (devices/buttons.py does the claiming)."""
    from devices.buttons import claim_problems as claim

    return claim(cfg.gpio.pin_factory, pins, workdir=cfg.storage.dir)


def preview_png(cfg: Config, data: bytes, out: str, dots: int = 576) -> Any:
    """What the printer would print, as a PNG (devices/preview.py), drawn with the screens' CJK font.

    Raises kiosk.core.fonts.FontMissing (with what to install) when there is none:
    a preview without Chinese would hide exactly what it is there to show."""
    from devices.preview import render_png
    from kiosk.core.fonts import find_cjk_font

    return render_png(data, out, dots, font_path=find_cjk_font(cfg.display.font, any_face=True))


# ---- roles --------------------------------------------------------------------


def build_dispenser(rt: Runtime) -> DispenserRole:
    """The ticket service, its printer worker, and optional hardware category buttons."""
    from kiosk.roles.dispenser.service import TicketService

    cfg = rt.cfg
    printer = build_printer(cfg)
    service = TicketService(
        cfg, rt.ledger, cache=rt.cache, client=rt.client, printer=printer, wake_sync=rt.event_written
    )
    service.disk = rt.disk
    role = DispenserRole(service, printer)
    rt.dispenser = role
    # The heartbeat and the metrics say what the dispenser last learnt of its printer.
    rt.health_parts["paper"] = lambda: service.paper.state
    rt.health_parts["printer"] = lambda: _printer_state(service.paper.state, service.paper.checked_at)
    rt.add_part("printer", printer.start, printer.close)
    rt.add_part("dispenser", service.start, service.stop)
    d = cfg.dispenser
    if d.booking_scanner and "lookup" not in cfg.device.roles:
        # A dispenser-only kiosk with a scanner: booking QR codes (预约签到). With the lookup
        # role the lookup's scanner serves both and its screen routes booking codes here.
        from kiosk.roles.lookup.service import ScanHub

        role.scans = ScanHub()
        role.scanner = build_scanner(cfg, role.scans.publish)
        rt.add_part("scanner", getattr(role.scanner, "start", None), getattr(role.scanner, "close", None))
        rt.health_parts["scanner"] = lambda: {
            "backend": cfg.scanner.backend,
            "connected": getattr(role.scanner, "connected", None),
        }
    pins = dict(d.button_pins)
    if d.priority_button_pin:
        pins["priority"] = d.priority_button_pin
    if pins:
        # gpiozero's thread only queues the press; the screen's listeners run on ours.
        presses = role.presses = Handoff(service.press, "dispenser-buttons")

        def start_buttons() -> None:
            presses.start()
            from devices.buttons import ButtonBank

            # Like the pad's keys: a GPIO problem (no access, a missing pin library,
            # a pin held elsewhere) leaves the touchscreen issuing tickets, and the
            # log line names the file and key to check instead of a traceback.
            try:
                role.pin_factory = make_pin_factory(cfg.gpio.pin_factory, cfg.storage.dir)
                role.buttons = ButtonBank(
                    pins, presses.put, bounce_time=cfg.gpio.bounce_ms / 1000, pin_factory=role.pin_factory
                )
            except Exception as e:
                log.error(
                    "%s: dispenser.button_pins / gpio.pin_factory: hardware buttons not available, touch only: %s",
                    cfg.path,
                    e,
                )
                role.buttons = None

        def stop_buttons() -> None:
            if role.buttons is not None:
                role.buttons.close()
                role.buttons = None
            presses.close()

        rt.add_part("dispenser buttons", start_buttons, stop_buttons)
    if cfg.idcard.backend != "none":
        _add_idcard(rt, role)
    return role


def _add_idcard(rt: Runtime, role: DispenserRole) -> None:
    """刷身份证取号: the reader's thread feeds the desk's thread, which tells the screen.

    The hall key is read when a card is, so a key provisioned after the start is
    used without a restart; without one a card gives the citizen a plain message
    and the technician a log line naming idcard.hall_key_file (check-config too)."""
    from devices.idcard import SerialIdCardReader, SimIdCardReader
    from kiosk.roles.dispenser.persons import IdCardDesk

    cfg = rt.cfg
    ic = cfg.idcard

    def hall_key() -> bytes:
        try:
            return ic.read_hall_key()
        except ConfigError as e:
            log.error("ID card not used: %s", "; ".join(f"{p.key}: {p.what} ({p.fix})" for p in e.problems))
            raise ValueError("no hall key") from None

    desk = IdCardDesk(hall_key, role.service)
    reader: Any
    if ic.backend == "serial":
        reader = SerialIdCardReader(
            ic.port,
            desk.offer,
            baudrate=ic.baudrate,
            poll_interval=ic.poll_ms / 1000,
            answer_timeout=ic.answer_timeout,
        )
    else:
        reader = SimIdCardReader(desk.offer)
    role.idcard, role.idcard_reader = desk, reader
    rt.add_part("idcard desk", desk.start, desk.stop)
    rt.add_part("idcard", reader.start, reader.close)
    rt.health_parts["idcard"] = lambda: {
        "backend": ic.backend,
        "connected": getattr(reader, "connected", None),
        "answering": getattr(reader, "answering", None),
    }


def _printer_state(paper: str, checked_at: float) -> str:
    if not checked_at:
        return "unknown"  # not asked yet since the start
    return "offline" if paper == "offline" else ("unknown" if paper == "unknown" else "online")


def build_lookup(rt: Runtime) -> LookupRole:
    from kiosk.roles.lookup.service import LookupService

    cfg = rt.cfg
    service = LookupService(cfg, rt.ledger, rt.cache, client=lambda: rt.client, wake=rt.event_written)
    try:
        service.prune_cache()
    except Exception:  # a damaged cache is only a cache
        log.exception("lookup cache prune failed")
    if "dispenser" in cfg.device.roles:
        from kiosk.roles.dispenser.booking import is_booking_payload

        service.not_mine = is_booking_payload  # booking QR codes go to the dispenser's check-in
    scanner = build_scanner(cfg, service.intake)
    role = LookupRole(service, scanner, scanner if cfg.scanner.backend == "wedge" else None)
    rt.lookup = role
    # Before the scanner, so the scanner stops first and its last bad lines are counted.
    rt.add_part("lookup", service.start, service.stop)
    start = getattr(scanner, "start", None)
    rt.add_part("scanner", start, getattr(scanner, "close", None))
    rt.health_parts["scanner"] = lambda: {
        "backend": cfg.scanner.backend,
        "connected": getattr(scanner, "connected", None),
    }
    return role


def build_pad(rt: Runtime) -> PadRole:
    """The rating service, its window watcher, and the clerk's button, keypad and LEDs if configured."""
    from kiosk.roles.pad.service import RatingService

    cfg = rt.cfg
    service = RatingService(cfg, rt.ledger, rt.cache, client=rt.client, wake=rt.event_written)
    role = PadRole(service)
    rt.pad = role
    if rt.sync is not None:
        rt.sync.add_listener(service.card_maybe_changed)  # the worker refreshed the card
    rt.add_part("pad", service.start, service.close)
    rt.health_parts["ratings_chain"] = lambda: _chain_head(rt)
    if cfg.pad.clerk_button_pin or cfg.pad.keypad_pins:
        rt.add_part("pad keys", lambda: _start_pad_keys(rt, role), lambda: _stop_pad_keys(role))
    return role


def _start_pad_keys(rt: Runtime, role: PadRole) -> None:
    """Wire the configured GPIO keys to the service.

    A GPIO problem is logged with what to check and leaves the touchscreen
    working: a broken key must not take the pad out of service."""
    from devices.buttons import ButtonBank, GPIOSetupError, LedBank
    from kiosk.roles.pad.keypad import LedLights, PadKeys, key_names

    pad = rt.cfg.pad
    factory = make_pin_factory(rt.cfg.gpio.pin_factory, rt.cfg.storage.dir)
    role.pin_factory = factory  # tests drive gpiozero's MockFactory pins through it
    leds = None
    try:
        if pad.led_pins:
            leds = LedBank(dict(zip(key_names(), pad.led_pins, strict=True)), pin_factory=factory)
        pad_keys = PadKeys(role.service, LedLights(leds) if leds else None)
        pins = dict(zip(key_names(), pad.keypad_pins, strict=False))  # none, or all five
        if pad.clerk_button_pin:
            pins["clerk"] = pad.clerk_button_pin
        # A key press writes the ledger: on the pad's own thread, not on gpiozero's.
        presses = Handoff(pad_keys.on_press, "pad-keys").start()
        try:
            bank = ButtonBank(pins, presses.put, bounce_time=rt.cfg.gpio.bounce_ms / 1000, pin_factory=factory)
        except BaseException:
            presses.close()
            pad_keys.close()
            raise
    except GPIOSetupError as e:
        log.error("pad keys not available, touch only: %s", e)
        if leds is not None:
            leds.close()
        return
    role.keys, role.buttons, role.leds, role.presses = pad_keys, bank, leds, presses


def _stop_pad_keys(role: PadRole) -> None:
    # No press may arrive, then none may be left running, then the keys: no LED timer may outlive the LEDs.
    if role.buttons is not None:
        role.buttons.close()
    if role.presses is not None:
        role.presses.close()
    if role.keys is not None:
        role.keys.close()
    if role.leds is not None:
        role.leds.close()
    role.keys = role.buttons = role.leds = role.presses = None


def _chain_head(rt: Runtime) -> dict[str, Any]:
    """The ratings hash chain's head ("<count>:<hash>"), for the fleet to see it grow."""
    from kiosk.core import keys

    head = rt.ledger.get_meta(keys.RATING_CHAIN_HEAD) or "0:"
    count, _, digest = head.partition(":")
    return {"count": int(count) if count.isdigit() else None, "head": digest[:16]}


ROLE_BUILDERS = {"dispenser": build_dispenser, "lookup": build_lookup, "pad": build_pad}
