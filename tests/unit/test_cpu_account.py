"""CpuAccount (actors/cpu_account.py) and the status map's CPU section."""

from __future__ import annotations

import time

from streamasr.actors.cpu_account import CpuAccount
from streamasr.supervisor.status import cpu_account


def _burn(seconds: float) -> None:
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        pass


def test_charges_process_cpu_time_by_activity_into_the_counters() -> None:
    counters: dict[str, int] = {}
    acct = CpuAccount(counters)
    with acct.charge("finals"):
        _burn(0.05)
    with acct.charge("finals"):
        _burn(0.05)
    with acct.charge("partials"):
        _burn(0.01)
    s = acct.seconds()
    assert s["finals"] >= 0.1  # both blocks, added
    assert s["partials"] >= 0.01
    assert counters["cpu_ms_finals"] == int(1000 * s["finals"])


def test_a_nested_charge_belongs_to_the_outer_block() -> None:
    acct = CpuAccount({})
    with acct.charge("finals"), acct.charge("early"):
        _burn(0.03)
    assert set(acct.seconds()) == {"finals"}
    assert acct.seconds()["finals"] >= 0.03


def test_an_exception_still_charges() -> None:
    acct = CpuAccount({})
    try:
        with acct.charge("first_pass"):
            _burn(0.02)
            raise ValueError
    except ValueError:
        pass
    assert acct.seconds()["first_pass"] >= 0.02


def test_status_section_splits_totals_and_leaves_the_rest_as_other() -> None:
    actors = [
        {"id": "refine", "counters": {"cpu_ms": 5000, "cpu_ms_finals": 2000, "refined": 3}},
        {"id": "inference", "counters": {"cpu_ms": 1000, "cpu_ms_first_pass": 1200}},
        {"id": "capture", "counters": {}},  # no heartbeat yet: left out
    ]
    out = cpu_account(actors, 0.5)
    assert out["supervisor"] == {"total": 0.5}
    assert out["refine"] == {"total": 5.0, "finals": 2.0, "other": 3.0}
    assert out["inference"]["other"] == 0.0  # counters sampled at slightly different times
    assert "capture" not in out
