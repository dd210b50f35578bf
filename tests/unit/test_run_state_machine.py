"""The run status machine, and params that are write-once per key (no database)."""

import itertools

import pytest

from core.errors import Conflict, InvalidInput
from core.runs import (
    RUN_STATUSES,
    RUN_TRANSITIONS,
    allowed_next,
    clean_params,
    clean_run_fields,
    merge_params,
    transition_error,
)

LEGAL = {
    ("draft", "running"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("succeeded", "archived"),
    ("failed", "archived"),
}


def test_the_table_is_exactly_the_specified_machine():
    assert set(RUN_TRANSITIONS) == set(RUN_STATUSES)
    assert {(a, b) for a, targets in RUN_TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize(("current", "target"), list(itertools.product(RUN_STATUSES, repeat=2)))
def test_every_pair(current, target):
    error = transition_error(current, target)
    if (current, target) in LEGAL or current == target:
        assert error is None
        return
    assert isinstance(error, Conflict)
    assert error.details == {
        "current_status": current,
        "requested_status": target,
        "allowed": allowed_next(current),
    }
    assert f"the run is {current} and cannot move to {target}" in error.message
    for status in allowed_next(current):
        assert status in error.message.split(";")[1]


def test_archived_is_final_and_says_so():
    assert allowed_next("archived") == []
    error = transition_error("archived", "running")
    assert error is not None and "archived is final" in error.message
    assert allowed_next("running") == ["succeeded", "failed"]


def test_params_merge_adds_keys_and_refuses_changed_values():
    current = {"lr": 0.1, "layers": [64, 64]}
    assert merge_params(current, {"seed": 1, "lr": 0.1}) == {
        "lr": 0.1,
        "layers": [64, 64],
        "seed": 1,
    }
    with pytest.raises(Conflict) as refused:
        merge_params(current, {"lr": 0.2, "layers": [64], "new": 1})
    assert refused.value.details == {"keys": ["layers", "lr"]}
    assert "layers, lr" in refused.value.message


def test_field_validation():
    with pytest.raises(InvalidInput):
        clean_params({"": 1})
    with pytest.raises(InvalidInput):
        clean_params({f"k{i}": i for i in range(1001)})
    with pytest.raises(InvalidInput):
        clean_run_fields({"status": "running"})
    with pytest.raises(InvalidInput):
        clean_run_fields({"name": None})
    assert clean_run_fields({"git_sha": None, "tags": [" a ", "a", "b"]}) == {
        "git_sha": None,
        "tags": ["a", "b"],
    }
