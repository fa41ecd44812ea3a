"""KYC: submission checks, the review decision (command and admin actions), resubmission."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import KycProfile, KycStatus
from notifications.models import Notification
from tests.accounts.helpers import assert_error, tiny_pdf, tiny_png
from tests.factories import UserFactory, enable_totp, totp_code

pytestmark = pytest.mark.django_db

KYC = "/api/v1/kyc"
ME = "/api/v1/me"
CHANGELIST = "/admin/accounts/kycprofile/"


def adult_birthday() -> str:
    today = timezone.now().date()
    return today.replace(year=today.year - 30).isoformat()


def png_file(name="passport.png"):
    return SimpleUploadedFile(name, tiny_png(), content_type="image/png")


def pdf_file(name="id-card.pdf"):
    return SimpleUploadedFile(name, tiny_pdf(), content_type="application/pdf")


def submission(document=None, **overrides):
    data = {
        "full_name": "Ada Lovelace",
        "country": "gb",
        "date_of_birth": adult_birthday(),
        "document": document if document is not None else png_file(),
    }
    data.update(overrides)
    return data


def submit(client, **kwargs):
    return client.post(KYC, submission(**kwargs), format="multipart")


def profile_of(user) -> KycProfile:
    return KycProfile.objects.get(user=user)


# --- submission ------------------------------------------------------------------------------


def test_submit_png_is_pending(auth_api, user):
    response = submit(auth_api)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["tier"] == 0
    assert body["submitted_at"] is not None
    profile = profile_of(user)
    assert profile.status == KycStatus.PENDING
    assert profile.full_name == "Ada Lovelace"
    assert profile.country == "GB"
    assert profile.document_content_type == "image/png"
    with profile.document.open("rb") as stored:
        assert stored.read() == tiny_png()
    me = auth_api.get(ME).json()
    assert me["kyc_status"] == "pending" and me["kyc_tier"] == 0
    assert auth_api.get(KYC).json()["status"] == "pending"


def test_submit_pdf_is_pending(auth_api, user):
    response = submit(auth_api, document=pdf_file())

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert profile_of(user).document_content_type == "application/pdf"


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("notes.txt", b"just some text, not an identity document", content_type="text/plain"),
        # Declared as a PNG but is not one: the type is sniffed from the bytes.
        SimpleUploadedFile("fake.png", b"GIF89a\x01\x00\x01\x00garbage", content_type="image/png"),
        SimpleUploadedFile("script.pdf", b"<html><script>alert(1)</script>", content_type="application/pdf"),
    ],
    ids=["txt", "fake-png", "html-as-pdf"],
)
def test_submit_unsupported_file_is_rejected(auth_api, user, upload):
    upload.seek(0)

    assert_error(submit(auth_api, document=upload), 400, "validation_error", field="document")
    assert profile_of(user).status == KycStatus.NONE


def test_submit_empty_file_is_rejected(auth_api, user):
    response = submit(auth_api, document=SimpleUploadedFile("empty.png", b"", content_type="image/png"))

    assert_error(response, 400, "validation_error", field="document")
    assert profile_of(user).status == KycStatus.NONE


def test_submit_too_large_is_rejected(auth_api, user, settings):
    settings.KYC_DOCUMENT_MAX_BYTES = 64
    document = SimpleUploadedFile("big.pdf", tiny_pdf() + b"0" * 100, content_type="application/pdf")

    error = assert_error(submit(auth_api, document=document), 400, "validation_error", field="document")
    assert error["fields"]["document"] == ["The file is larger than 64 bytes."]
    assert profile_of(user).status == KycStatus.NONE


def test_submit_at_the_size_limit_is_accepted(auth_api, user, settings):
    settings.KYC_DOCUMENT_MAX_BYTES = len(tiny_pdf())

    assert submit(auth_api, document=pdf_file()).status_code == 201
    assert profile_of(user).status == KycStatus.PENDING


def test_size_limit_message_in_megabytes(auth_api, settings):
    settings.KYC_DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
    big = SimpleUploadedFile("big.pdf", tiny_pdf() + b"0" * (5 * 1024 * 1024), content_type="application/pdf")

    error = assert_error(submit(auth_api, document=big), 400, "validation_error", field="document")
    assert error["fields"]["document"] == ["The file is larger than 5 MB."]


def test_submit_under_18_is_rejected(auth_api, user):
    today = timezone.now().date()
    seventeen = today.replace(year=today.year - 17).isoformat()

    assert_error(submit(auth_api, date_of_birth=seventeen), 400, "validation_error", field="date_of_birth")
    assert profile_of(user).status == KycStatus.NONE


def test_submit_future_birthday_is_rejected(auth_api, user):
    tomorrow = (timezone.now().date() + dt.timedelta(days=1)).isoformat()

    assert_error(submit(auth_api, date_of_birth=tomorrow), 400, "validation_error", field="date_of_birth")


def test_submit_bad_name_and_country(auth_api, user):
    error = assert_error(submit(auth_api, full_name="Ada", country="1X"), 400, "validation_error")

    assert {"full_name", "country"} <= set(error["fields"])
    assert profile_of(user).status == KycStatus.NONE


def test_submit_missing_fields_is_validation_error(auth_api, user):
    error = assert_error(auth_api.post(KYC, {}, format="multipart"), 400, "validation_error")

    assert {"full_name", "country", "date_of_birth", "document"} <= set(error["fields"])


def test_submit_needs_authentication(api, db):
    assert_error(submit(api), 401, "not_authenticated")


def test_submit_again_while_pending_is_conflict(auth_api, user):
    assert submit(auth_api).status_code == 201
    first = profile_of(user)

    response = submit(auth_api, document=pdf_file(), full_name="Someone Else")

    assert_error(response, 409, "kyc_already_submitted")
    profile = profile_of(user)
    assert profile.full_name == "Ada Lovelace"
    assert profile.document.name == first.document.name


# --- decision by management command -------------------------------------------------------------


def test_kyc_decide_approve(auth_api, user):
    submit(auth_api)

    call_command("kyc_decide", email=user.email, approve=True)

    profile = profile_of(user)
    assert profile.status == KycStatus.APPROVED
    assert profile.decided_at is not None
    me = auth_api.get(ME).json()
    assert me["kyc_tier"] == 1
    assert me["kyc_status"] == "approved"
    assert Notification.objects.filter(user=user, kind="kyc_approved").count() == 1
    # Approved is final: no resubmission.
    assert_error(submit(auth_api), 409, "kyc_already_submitted")


def test_kyc_decide_records_the_staff_actor(auth_api, user, staff):
    submit(auth_api)

    call_command("kyc_decide", email=user.email.upper(), approve=True, actor=staff.email)

    assert profile_of(user).decided_by == staff


def test_a_rejection_reason_ending_with_a_full_stop_is_told_without_a_second_one(auth_api, user):
    submit(auth_api)
    call_command("kyc_decide", email=user.email, reject=True, reason="  Document is blurry.  ")
    body = Notification.objects.get(user=user, kind="kyc_rejected").body
    assert body == "Reason: Document is blurry. You can correct your details and submit again."


def test_kyc_decide_reject_then_resubmit(auth_api, user):
    submit(auth_api)

    call_command("kyc_decide", email=user.email, reject=True, reason="Document is blurry")

    profile = profile_of(user)
    assert profile.status == KycStatus.REJECTED
    assert profile.rejection_reason == "Document is blurry"
    me = auth_api.get(ME).json()
    assert me["kyc_tier"] == 0 and me["kyc"]["rejection_reason"] == "Document is blurry"
    notification = Notification.objects.get(user=user, kind="kyc_rejected")
    assert "Document is blurry" in notification.body

    response = submit(auth_api, document=pdf_file())
    assert response.status_code == 201, response.content
    profile = profile_of(user)
    assert profile.status == KycStatus.PENDING
    assert profile.rejection_reason == ""
    assert profile.decided_at is None


def test_kyc_decide_reject_needs_a_reason(auth_api, user):
    submit(auth_api)

    with pytest.raises(CommandError):
        call_command("kyc_decide", email=user.email, reject=True)
    with pytest.raises(CommandError):
        call_command("kyc_decide", email=user.email, reject=True, reason="   ")
    assert profile_of(user).status == KycStatus.PENDING
    assert not Notification.objects.filter(user=user, kind__startswith="kyc_").exists()


def test_kyc_decide_needs_a_pending_submission(user):
    with pytest.raises(CommandError):
        call_command("kyc_decide", email=user.email, approve=True)
    assert profile_of(user).status == KycStatus.NONE


def test_kyc_decide_unknown_email(db):
    with pytest.raises(CommandError):
        call_command("kyc_decide", email="nobody@example.com", approve=True)


# --- decision in admin ----------------------------------------------------------------------


@pytest.fixture
def admin_client(staff, password):
    """A staff browser session signed in to admin with a verified TOTP device."""
    device = enable_totp(staff)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": staff.email,
            "password": password,
            "otp_device": device.persistent_id,  # django-otp wants the device named explicitly
            "otp_token": totp_code(device),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    assert client.get("/admin/").status_code == 200
    return client


@pytest.fixture
def pending_profiles(db):
    profiles = []
    for name in ("Grace Hopper", "Alan Turing"):
        trader = UserFactory()
        KycProfile.objects.filter(user=trader).update(
            status=KycStatus.PENDING,
            full_name=name,
            country="US",
            date_of_birth=dt.date(1990, 1, 1),
            submitted_at=timezone.now(),
        )
        profiles.append(profile_of(trader))
    return profiles


def test_admin_review_queue_lists_pending(admin_client, pending_profiles):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    for profile in pending_profiles:
        assert profile.user.email in response.content.decode()


def test_admin_approve_selected(admin_client, staff, pending_profiles):
    first, second = pending_profiles

    response = admin_client.post(
        CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [first.pk], "index": 0}
    )

    assert response.status_code == 302, response.content[:2000]
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == KycStatus.APPROVED
    assert first.decided_by == staff
    assert second.status == KycStatus.PENDING
    assert Notification.objects.filter(user=first.user, kind="kyc_approved").exists()


def test_admin_reject_selected_asks_for_a_reason(admin_client, staff, pending_profiles):
    pks = [profile.pk for profile in pending_profiles]

    page = admin_client.post(CHANGELIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: pks, "index": 0})

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html
    for profile in pending_profiles:
        assert profile.user.email in html
    assert KycProfile.objects.filter(pk__in=pks, status=KycStatus.PENDING).count() == 2

    # An empty reason re-shows the form.
    page = admin_client.post(CHANGELIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: pks, "reason": ""})
    assert page.status_code == 200
    assert KycProfile.objects.filter(pk__in=pks, status=KycStatus.PENDING).count() == 2

    response = admin_client.post(
        CHANGELIST,
        {"action": "reject_selected", ACTION_CHECKBOX_NAME: pks, "reason": "Name does not match the document"},
    )

    assert response.status_code == 302, response.content[:2000]
    for profile in pending_profiles:
        profile.refresh_from_db()
        assert profile.status == KycStatus.REJECTED
        assert profile.rejection_reason == "Name does not match the document"
        assert profile.decided_by == staff
        assert Notification.objects.filter(user=profile.user, kind="kyc_rejected").exists()


def test_admin_actions_need_an_otp_verified_session(staff, pending_profiles):
    client = Client()
    client.force_login(staff)  # password session, no verified device

    response = client.post(
        CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending_profiles[0].pk], "index": 0}
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    pending_profiles[0].refresh_from_db()
    assert pending_profiles[0].status == KycStatus.PENDING


def test_admin_document_view(admin_client, auth_api, user):
    submit(auth_api)
    profile = profile_of(user)

    response = admin_client.get(f"/admin/accounts/kycprofile/{profile.pk}/document/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == tiny_png()
