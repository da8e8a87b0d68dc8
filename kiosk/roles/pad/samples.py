"""What a pad preview can show (screens/states.py renders each state)."""

from __future__ import annotations

PAD_STATES = ("idle", "paused", "rate", "reasons", "phone", "thanks", "not_rated")

# A made-up staff card for previews: the device's cache keeps its real one.
SAMPLE_CARD = {"staff_id": "S0000", "name": "王丽华", "employee_no": "10201", "stars": 5}
