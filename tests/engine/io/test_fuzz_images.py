"""Damaged real PNG/JPEG files load as a valid tensor or fail with a clear ImageLoadError."""
from __future__ import annotations

import pytest

from bench.fuzz_images import load_case, make_cases


def test_cases_are_seeded_and_varied():
    a, b = make_cases(40, seed=3), make_cases(40, seed=3)
    assert [c.data for c in a] == [c.data for c in b]
    assert [c.data for c in make_cases(40, seed=4)] != [c.data for c in a]
    assert len({c.kind for c in a}) >= 6  # every mutation family shows up


@pytest.mark.timeout(120)
def test_fuzzed_images_never_crash_or_hang(tmp_path):
    outcomes: dict[str, int] = {}
    bad = []
    for case in make_cases(300, seed=0):
        outcome, detail, seconds = load_case(case, tmp_path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "BAD" or seconds > 5:
            bad.append(f"{case.name}: {detail} ({seconds:.1f} s)")
    assert not bad, "\n".join(bad)
    # both ends are exercised: some damage is survivable, most is reported
    assert outcomes.get("image", 0) > 20 and outcomes.get("error", 0) > 100
