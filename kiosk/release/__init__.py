"""Releases for a fleet: the signed offline bundle (bundle.py) and the side-by-side
releases with a health-confirmed switch and automatic rollback (releases.py).

Nothing here imports Kivy, a device or the network: the updater runs as root
from a systemd ExecStartPre or a technician's shell, next to the app, not in it.
"""
