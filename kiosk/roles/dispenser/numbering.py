"""Whether a device's offline range can ever give out a number the central also gives out.

The central numbers each category (and the hall-wide priority series) from
``number_min`` to ``number_max`` (its config, docs/central-api.yaml); online
and leased numbers come from there. A dispenser's ``offline_range`` must lie
outside it, or an offline A005 and an online A005 are two citizens with one
number. The device can only know this against the central's config, so the
self-check asks it (the cached copy when the central is unreachable).
"""

from __future__ import annotations

from typing import Any


def _span(entry: Any) -> tuple[int, int] | None:
    if not isinstance(entry, dict):
        return None
    lo, hi = entry.get("number_min"), entry.get("number_max")
    if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool) and not isinstance(hi, bool):
        return lo, hi
    return None


def offline_range_overlaps(offline_range: list[int] | tuple[int, int], central_config: dict[str, Any]) -> list[str]:
    """One line per series whose central range overlaps the offline range (empty: none does)."""
    first, last = int(offline_range[0]), int(offline_range[1])
    series: list[tuple[str, Any]] = []
    for c in central_config.get("categories") or []:
        if isinstance(c, dict):
            series.append((f"category {c.get('code')} ({c.get('prefix') or c.get('code')})", c))
    series.append(("the priority series", central_config.get("priority")))
    out = []
    for name, entry in series:
        span = _span(entry)
        if span is not None and first <= span[1] and span[0] <= last:
            out.append(f"{name}: central numbers {span[0]}..{span[1]}")
    return out


def offline_range_problem(
    offline_range: list[int] | tuple[int, int], central_config: dict[str, Any], where: str
) -> str | None:
    """The technician's line when the offline range overlaps `where`'s numbers (None: it does not).
    One wording for the self-check and check-config."""
    overlaps = offline_range_overlaps(offline_range, central_config)
    if not overlaps:
        return None
    first, last = offline_range
    return (
        f"dispenser.offline_range {first}..{last} overlaps {where} ({'; '.join(overlaps)}): "
        "an offline ticket could repeat an online number. Set offline_range above the central's "
        "number_max (each dispenser its own range)"
    )
