from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.diff import Changes, apply, diff

values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
# Rows always carry their own id, as on the wire.
fields = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), values, max_size=4)
states = st.dictionaries(st.sampled_from([str(i) for i in range(8)]), fields, max_size=8).map(
    lambda s: {k: {**v, "id": k} for k, v in s.items()}
)


@given(states, states)
def test_apply_of_diff_reproduces_new_state(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert apply(old, diff(old, new)) == new


@given(states)
def test_no_change_is_empty(state: dict[str, Any]) -> None:
    assert not diff(state, {k: dict(v) for k, v in state.items()})


@pytest.mark.parametrize(
    ("old", "new", "upsert", "delete"),
    [
        ({}, {"1": {"id": "1", "x": 1}}, [{"id": "1", "x": 1}], []),
        ({"1": {"id": "1", "x": 1}}, {}, [], ["1"]),
        (
            {"1": {"id": "1", "x": 1, "y": 2}},
            {"1": {"id": "1", "x": 1, "y": 3}},
            [{"id": "1", "y": 3}],
            [],
        ),
        # A row that lost a field is replaced whole.
        (
            {"1": {"id": "1", "x": 1, "y": 2}},
            {"1": {"id": "1", "x": 1}},
            [{"id": "1", "x": 1}],
            ["1"],
        ),
    ],
)
def test_diff_table(
    old: dict[str, Any], new: dict[str, Any], upsert: list[Any], delete: list[str]
) -> None:
    assert diff(old, new) == Changes(upsert, delete)


def test_apply_does_not_mutate_input() -> None:
    old = {"1": {"id": "1", "x": 1}}
    apply(old, Changes([{"id": "1", "x": 2}], []))
    assert old == {"1": {"id": "1", "x": 1}}
