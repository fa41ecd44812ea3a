"""The staff console: every admin action is audited, and the audit trail itself is read-only there."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import DEFAULT_PASSWORD, enable_totp, totp_code
from tests.trading.audit_helpers import only, records
from trading.audit import audit_append, audit_chain_verify
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_console(staff):
    """A browser signed in to /admin/ the only way staff can: password plus a TOTP code."""
    device = enable_totp(staff)
    client = Client(REMOTE_ADDR="192.0.2.44")
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": staff.email,
            "password": DEFAULT_PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": totp_code(device),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert client.get("/admin/").status_code == 200
    client.staff = staff
    return client


def test_staff_sign_in_is_recorded(staff_console):
    record = only("auth.login")
    assert (record.actor_id, record.data["path"], record.ip) == (staff_console.staff.pk, "/admin/login/", "192.0.2.44")


def test_admin_change_of_a_user_is_recorded(staff_console, user):
    response = staff_console.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {"email": user.email, "first_name": "Grace", "last_name": "Hopper", "is_active": "on"},
    )
    assert response.status_code == 302, response.content[:3000]
    record = only("admin.change")
    assert (record.actor_id, record.actor_label) == (staff_console.staff.pk, staff_console.staff.email)
    assert (record.target_type, record.target_id) == ("accounts.user", str(user.pk))
    assert record.data["object_repr"] == user.email
    assert record.data["change"] == [{"changed": {"fields": ["First name", "Last name"]}}]


def test_admin_addition_and_bulk_deletion_are_recorded(staff_console):
    response = staff_console.post("/admin/auth/group/add/", {"name": "auditors"})
    assert response.status_code == 302, response.content[:3000]
    auditors = Group.objects.get(name="auditors")
    added = only("admin.addition")
    assert (added.actor_id, added.target_type, added.target_id) == (
        staff_console.staff.pk,
        "auth.group",
        str(auditors.pk),
    )
    assert added.data["object_repr"] == "auditors"

    # "Delete selected" on several objects writes its log entries with bulk_create.
    others = Group.objects.create(name="traders-desk")
    response = staff_console.post(
        "/admin/auth/group/", {"action": "delete_selected", "_selected_action": [auditors.pk, others.pk], "post": "yes"}
    )
    assert response.status_code == 302, response.content[:3000]
    assert not Group.objects.exists()
    deleted = records("admin.deletion")
    assert sorted((r.target_id, r.data["object_repr"]) for r in deleted) == sorted(
        [(str(auditors.pk), "auditors"), (str(others.pk), "traders-desk")]
    )
    assert all(r.actor_id == staff_console.staff.pk for r in deleted)
    assert audit_chain_verify().ok


def test_the_audit_trail_is_read_only_in_admin(staff_console):
    record = audit_append(actor=None, action="test.visible", target_type="test.thing", target_id="42")
    base = "/admin/compliance/auditrecord/"

    listing = staff_console.get(base)
    assert listing.status_code == 200
    assert b"test.visible" in listing.content
    assert staff_console.get(base, {"q": "42"}).status_code == 200
    assert staff_console.get(base, {"action__exact": "test.visible"}).status_code == 200

    detail = staff_console.get(f"{base}{record.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content

    assert staff_console.get(f"{base}add/").status_code == 403
    assert staff_console.post(f"{base}{record.pk}/change/", {"action": "forged"}).status_code == 403
    assert staff_console.post(f"{base}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditRecord.objects.get(pk=record.pk).action == "test.visible"
