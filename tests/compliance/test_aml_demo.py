"""The demo AML cases (compliance/demo.py): made through the platform's services, found by
the rules, seeded once."""

from __future__ import annotations

from io import StringIO

import pytest

from compliance import demo
from compliance.models import AmlAlert, AmlCase, SanctionsListLoad

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_has_two_cases_to_work_and_seeding_again_adds_nothing(eager_tasks):
    out = StringIO()
    demo.seed(out)
    assert "2 cases" in out.getvalue()
    structuring = AmlCase.objects.get(user__email=demo.STRUCTURER)
    assert set(structuring.alerts.values_list("rule_code", flat=True)) == {"STRUCTURING", "RAPID_IN_OUT"}
    assert structuring.score == 100
    mule = AmlCase.objects.get(user__email=demo.MULES[-1])
    assert set(mule.alerts.values_list("rule_code", flat=True)) == {"SHARED_IP_DEVICE", "HIGH_RISK_JURISDICTION"}
    alerts = AmlAlert.objects.count()
    assert "demo sanctions list: 4 fictional entities, 3 addresses" in out.getvalue()
    demo.seed(StringIO())
    assert AmlCase.objects.count() == 2 and AmlAlert.objects.count() == alerts
    assert SanctionsListLoad.objects.count() == 1  # loaded once, and a list loaded by staff is kept
