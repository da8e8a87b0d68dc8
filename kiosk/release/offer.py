"""`kiosk update --central`: fetch the release the central offers this device's
group (docs/central-api.yaml: /release), check it, and install it like a bundle
from a USB stick. The central is trusted for nothing but the transport: the
download must match the offered sha256, the bundle's own signature must be the
offered one, and then verify() checks it against the device's release keys."""

from __future__ import annotations

import hashlib
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kiosk.release.releases import Layout, UpdateError, apply_update


def update_from_central(config: str | None, root: Path, trust: Path, *, trial_s: float) -> dict[str, Any] | None:
    from kiosk.core.config import load_config, resolve_path
    from kiosk.sync.client import API, CentralClient, CentralError

    cfg = load_config(resolve_path(config))
    client = CentralClient.from_config(cfg)
    arch = platform.machine()
    layout = Layout(root)
    try:
        try:
            r = client.session.get(
                client.base_url + API + "/release", params={"arch": arch}, timeout=(5, 30), verify=client.verify
            )
            if r.status_code == 204:
                return None
            r.raise_for_status()
            offer = r.json()
            if offer.get("version") == layout.version_of(layout.current):
                return None
            scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=layout.base if layout.base.exists() else None))
            try:
                tar = scratch / f"hall-kiosk-{offer['version']}-{arch}.tar"
                digest = hashlib.sha256()
                with client.session.get(
                    client.base_url + offer["url"].removeprefix(client.base_url),
                    timeout=(5, 60),
                    stream=True,
                    verify=client.verify,
                ) as dl:
                    dl.raise_for_status()
                    with open(tar, "wb") as f:
                        for block in dl.iter_content(1 << 20):
                            digest.update(block)
                            f.write(block)
                if digest.hexdigest() != offer["sha256"]:
                    raise UpdateError(
                        f"the download of {offer['version']} does not match the offered sha256 "
                        "(damaged in transit?); nothing installed"
                    )
                state = apply_update(tar, root, trust, trial_s=trial_s, expect_signature=offer["signature"])
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        except (CentralError, OSError, ValueError, KeyError) as e:
            raise UpdateError(f"no release from {client.base_url}: {type(e).__name__}: {e}") from None
    finally:
        client.close()
    return state
