"""The capture-session status machine (no database)."""

import itertools

import pytest

from core.capture import CAPTURE_STATUSES, CAPTURE_TRANSITIONS, capture_transition_error

LEGAL = {
    ("draft", "running"),
    ("draft", "failed"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("succeeded", "archived"),
    ("succeeded", "backfilling"),
    ("failed", "archived"),
    ("archived", "backfilling"),
    ("backfilling", "succeeded"),
    ("backfilling", "archived"),
    ("backfilling", "failed"),
}


def test_the_table():
    assert set(CAPTURE_TRANSITIONS) == set(CAPTURE_STATUSES)
    assert {(a, b) for a, targets in CAPTURE_TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize(
    ("current", "target"),
    [(a, b) for a, b in itertools.product(CAPTURE_STATUSES, repeat=2) if a != "backfilling"],
)
def test_every_pair(current, target):
    error = capture_transition_error(current, target)
    if (current, target) in LEGAL:
        assert error is None
    else:
        assert error is not None and error.details["current_status"] == current
        assert error.details["allowed"] == [
            s for s in CAPTURE_STATUSES if s in CAPTURE_TRANSITIONS[current]
        ]


@pytest.mark.parametrize("previous", ["succeeded", "archived"])
def test_a_backfill_returns_where_it_came_from_or_fails(previous):
    for target in CAPTURE_STATUSES:
        error = capture_transition_error("backfilling", target, previous=previous)
        assert (error is None) == (target in (previous, "failed"))
