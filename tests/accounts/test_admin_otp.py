"""The staff console (Django admin) needs staff status and a verified TOTP device."""

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from tests.accounts.helpers import next_time_step, wrong_code
from tests.factories import UserFactory, enable_totp, totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def admin_login(client, email, password, otp_token=None, device=None):
    """POST the OTP admin login form (django_otp.admin.OTPAdminAuthenticationForm fields)."""
    data = {"username": email, "password": password, "next": "/admin/"}
    if otp_token is not None:
        data["otp_token"] = otp_token
    if device is not None:
        data["otp_device"] = device.persistent_id
    return client.post(f"{LOGIN}?next=/admin/", data)


def assert_sent_to_login(response):
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(LOGIN), response["Location"]


def test_login_page_asks_for_an_otp_token(db):
    response = Client().get(LOGIN)

    assert response.status_code == 200
    assert 'name="otp_token"' in response.content.decode()


def test_staff_without_otp_verification_is_sent_to_login(staff):
    client = Client()
    client.force_login(staff)

    assert_sent_to_login(client.get("/admin/"))
    assert_sent_to_login(client.get("/admin/accounts/user/"))


def test_admin_login_without_a_token_fails(staff, password):
    enable_totp(staff)
    client = Client()

    response = admin_login(client, staff.email, password)

    assert response.status_code == 200  # the form again, with errors
    assert response.context["form"].errors
    assert_sent_to_login(client.get("/admin/"))


def test_admin_login_with_a_wrong_token_fails(staff, password):
    device = enable_totp(staff)
    wrong = wrong_code(device)
    client = Client()

    response = admin_login(client, staff.email, password, otp_token=wrong, device=device)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert_sent_to_login(client.get("/admin/"))


def test_admin_login_with_a_wrong_password_fails(staff):
    device = enable_totp(staff)
    client = Client()

    response = admin_login(client, staff.email, "wrong-password-1", otp_token=totp_code(device), device=device)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert_sent_to_login(client.get("/admin/"))


def test_admin_login_with_a_valid_token_opens_the_console(staff, password):
    device = enable_totp(staff)
    client = Client()

    # One step: the staff member's only authenticator is chosen for them.
    response = admin_login(client, staff.email, password, otp_token=totp_code(device))

    assert response.status_code == 302, response.content[:3000]
    assert response["Location"] == "/admin/"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "staff console" in index.content.decode()
    assert client.get("/admin/accounts/kycprofile/").status_code == 200


def test_admin_login_naming_the_device_works_too(staff, password):
    device = enable_totp(staff)
    client = Client()

    response = admin_login(client, staff.email, password, otp_token=totp_code(device), device=device)

    assert response.status_code == 302, response.content[:3000]
    assert client.get("/admin/").status_code == 200


def test_admin_login_code_is_single_use(staff, password):
    device = enable_totp(staff)
    code = totp_code(device)
    assert admin_login(Client(), staff.email, password, otp_token=code).status_code == 302

    client = Client()
    response = admin_login(client, staff.email, password, otp_token=code)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert_sent_to_login(client.get("/admin/"))


def test_staff_without_a_device_cannot_sign_in(staff, password):
    client = Client()

    response = admin_login(client, staff.email, password, otp_token="123456")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert_sent_to_login(client.get("/admin/"))


def test_non_staff_cannot_sign_in_even_with_a_valid_token(user, password):
    device = enable_totp(user)
    client = Client()

    response = admin_login(client, user.email, password, otp_token=totp_code(device), device=device)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert_sent_to_login(client.get("/admin/"))


def test_non_staff_with_a_verified_site_session_cannot_open_admin(password):
    """A trader fully signed in on the site (password + code) is still kept out of admin."""
    trader = UserFactory()
    device = enable_totp(trader)
    client = Client()
    assert client.post("/login/", {"email": trader.email, "password": password})["Location"] == "/login/otp/"
    next_time_step(device)
    response = client.post("/login/otp/", {"otp": totp_code(device)})
    assert response.status_code == 302
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id

    assert_sent_to_login(client.get("/admin/"))
    assert_sent_to_login(client.get("/admin/accounts/kycprofile/"))


def test_each_section_of_the_console_has_a_name_of_its_own(admin_client_otp):
    """django-allauth's email addresses were a second "Accounts" section beside the platform's."""
    import re
    from collections import Counter

    page = admin_client_otp.get("/admin/").content.decode()
    sections = re.findall(r'<caption>\s*<a href="/admin/[a-z_]+/"[^>]*>([^<]+)</a>', page)
    assert "Accounts" in sections and "Social login: email addresses" in sections, sections
    assert "Social login: providers and linked accounts" in sections, sections
    assert [name for name, count in Counter(sections).items() if count > 1] == []
