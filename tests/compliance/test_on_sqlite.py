"""The embedded mode runs compliance on SQLite: the AML rules and scan, sanctions screening, the
travel rule, withdrawals decided by score and the demo's cases, with the same tests."""

import pytest

from tests.processes import pytest_on_sqlite

HERE = "tests/compliance/"


@pytest.mark.slow
def test_the_same_compliance_tests_pass_on_sqlite(tmp_path):
    pytest_on_sqlite(
        tmp_path,
        HERE + "test_aml.py",
        HERE + "test_sanctions.py",
        HERE + "test_travel_rule.py",
        HERE + "test_withdrawal_decisions.py",
        HERE + "test_aml_demo.py",
        "-k",
        "not admin and not live and not sar",
        timeout=600,
    )
