"""Fleet options given as text, by `cmscan simulate` or a benchmark: run times and fault mixes."""

from __future__ import annotations

import math

from simulator.behaviour import Fault
from simulator.fleet import checked_fault_mix


def parse_fault_mix(text: str) -> dict[Fault, float]:
    """`powered-off=0.1,slow=0.02` as a fault mix, or ValueError saying what is wrong."""
    mix: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = math.nan
        if not sep or not math.isfinite(value):
            raise ValueError(f"{item.strip()!r} is not FAULT=SHARE, e.g. powered-off=0.1")
        if name.strip() in mix:
            raise ValueError(f"fault {name.strip()!r} is given twice in the fault mix")
        mix[name.strip()] = value
    return checked_fault_mix(mix)


def parse_exec_ms(text: str) -> tuple[float, float | None]:
    """A probe run time in ms, `250`, or a range, `500-1500`, or ValueError saying why not."""
    low, sep, high = text.strip().partition("-")
    try:
        first = float(low)
        last = float(high) if sep else None
    except ValueError:
        raise ValueError(f"{text!r} is not a run time in ms, e.g. 250 or 500-1500") from None
    if not math.isfinite(first) or first < 0 or (last is not None and not math.isfinite(last)):
        raise ValueError(f"{text!r} is not a run time in ms, e.g. 250 or 500-1500")
    if last is not None and last < first:
        raise ValueError(f"probe run time range {text!r} ends before it starts")
    return first, last
