"""The conversion profile state machine's transition table."""

import pytest

from core.errors import Conflict
from core.profiles import STATUSES, TRANSITIONS, check_transition

ALLOWED = {
    ("draft", "activate"),
    ("draft", "schedule"),
    ("scheduled", "activate"),
    ("scheduled", "schedule"),
    ("scheduled", "deprecate"),
    ("active", "deprecate"),
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("transition", ["activate", "schedule", "deprecate"])
def test_only_the_documented_transitions_are_allowed(status, transition):
    if (status, transition) in ALLOWED:
        check_transition(status, transition)
        return
    with pytest.raises(Conflict) as caught:
        check_transition(status, transition)
    assert caught.value.details == {"status": status, "allowed": list(TRANSITIONS[status])}
    assert status in caught.value.message


def test_deprecated_is_final():
    assert TRANSITIONS["deprecated"] == ()
    with pytest.raises(Conflict, match="final"):
        check_transition("deprecated", "activate")
