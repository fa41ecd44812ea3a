"""The monitor's rule for one check, on its own (no Django, no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from ops.rules import FAILED, FAILING, OK, RECOVERED, CheckStatus, Rule, observe

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


TWO_AND_TWO = Rule(fail_after=2, recover_after=2)


def run(outcomes, rule=TWO_AND_TWO):
    state, transitions = CheckStatus(), []
    for i, ok in enumerate(outcomes):
        state, transition = observe(state, ok, T0 + timedelta(seconds=5 * i), rule)
        transitions.append(transition)
    return state, transitions


def test_one_failed_probe_is_not_an_incident():
    state, transitions = run([True, False, True, False, True])
    assert state.status == OK
    assert transitions == [None] * 5


def test_fails_after_n_consecutive_failures_once():
    state, transitions = run([True, False, False, False, False])
    assert transitions == [None, None, FAILED, None, None]
    assert state.status == FAILING
    assert state.since == T0 + timedelta(seconds=10)  # when it turned failing
    assert state.failures == 4


def test_recovers_after_m_consecutive_successes_once():
    state, transitions = run([False, False, True, False, True, True, True])
    assert transitions == [None, FAILED, None, None, None, RECOVERED, None]
    assert state.status == OK
    assert state.since == T0 + timedelta(seconds=25)


def test_a_rule_of_one_reacts_to_every_probe():
    _, transitions = run([False, True, False], Rule(fail_after=1, recover_after=1))
    assert transitions == [FAILED, RECOVERED, FAILED]


def test_a_fresh_check_starts_ok_since_its_first_probe():
    state, _ = observe(CheckStatus(), True, T0, Rule())
    assert (state.status, state.since, state.successes) == (OK, T0, 1)


@pytest.mark.parametrize("fail_after, recover_after", [(0, 1), (1, 0)])
def test_a_rule_needs_at_least_one_probe(fail_after, recover_after):
    with pytest.raises(ValueError):
        Rule(fail_after=fail_after, recover_after=recover_after)
