"""A day's ratings in a 好差评 profile (kiosk/central/profiles.py), as the bench central holds them.

The case a rating is about (办件编号, 事项编码 and version, 即办/承诺) comes from
the central's own record of the window session, not from what the pad says:
the central opened that session. A clerk-opened offline session (`L-…`) has
only what the pad recorded. Only `rating.submitted` counts: a session closed
without a rating is not turned into one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from kiosk.central import profiles
from kiosk.central.store import CentralStore


def _rated_at(ev: dict) -> datetime:
    for value in (ev["body"].get("decided_at"), ev["created_at"]):
        try:
            t = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        return t if t.tzinfo else t.astimezone()
    raise ValueError(f"rating {ev['id']} has no readable time")


def rating_of(store: CentralStore, ev: dict) -> profiles.Rating:
    body = ev["body"]
    session = store.session(body.get("session_id") or "") or {}

    def pick(key: str):
        return session.get(key) or body.get(key)

    reasons = [r for r in body.get("reasons") or [] if isinstance(r, dict | str)]
    staff_id = session.get("staff_id") or body.get("staff_id")
    return profiles.Rating(
        level=body["level"],
        rated_at=_rated_at(ev),
        channel=body.get("channel") or "PJQ",
        case_no=pick("case_no"),
        item_code=pick("item_code"),
        item_version=pick("item_version"),
        item_name=pick("item_name"),
        case_type=session.get("case_type"),
        window=body.get("window"),
        staff_id=staff_id,
        staff_name=store.staff_name(staff_id),
        reasons=tuple(r["code"] if isinstance(r, dict) else r for r in reasons),
        reason_texts=tuple(r.get("zh", "") for r in reasons if isinstance(r, dict)),
        region_code=body.get("region_code"),
        reasons_version=body.get("reasons_version"),
    )


def export_day(store: CentralStore, profile: str, day: date, reason_map: Mapping[str, str] | None = None) -> dict:
    """Every rating given on `day` (the hall's local date of the rating), in `profile`."""
    if profile not in profiles.PROFILES:
        raise profiles.ProfileError(f"no profile {profile!r}: use one of {', '.join(profiles.PROFILES)}")
    records = []
    for ev in store.events("rating.submitted"):
        r = rating_of(store, ev)
        if r.rated_at.date() == day:
            records.append((r.rated_at, profiles.write(profile, r, reason_map)))
    records.sort(key=lambda x: x[0])
    doc = {"profile": profile, "day": day.isoformat(), "count": len(records), "records": [x[1] for x in records]}
    table = profiles.shipped_tables().get(profile)
    if table is not None:
        # Where the reason codes came from, so a receiving system can tell an unconfirmed table.
        if reason_map is not None:
            doc["reason_codes"] = {"source": "--reason-map"}  # the hall's own file: its word for it
        else:
            doc["reason_codes"] = {
                "source": "kiosk/data/reason-maps.toml",
                "reasons_version": table.reasons_version,
                "verified": table.verified,
            }
    return doc
