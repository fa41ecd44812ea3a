"""Account writes: registration, sign-in, TOTP 2FA, re-authentication and KYC.

Every public function here opens its own (durable) transaction; views call them and
never touch models directly.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from trading.audit import audit_append
from trading.errors import Conflict, DomainError, NotFound, OtpRequired, ValidationFailed

from . import signals
from .models import KycProfile, KycStatus, User
from .otp import InvalidOtp, _raise_for, _verify_locked, confirmed_device, otp_check, two_factor_enabled  # noqa: F401

PENDING_DEVICE_NAME = "pending"
ACTIVE_DEVICE_NAME = "authenticator"


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"


# --- registration and sign-in ------------------------------------------------------------


def user_register(*, email: str, password: str) -> User:
    email = User.objects.normalize_email(email or "").strip().lower()
    candidate = User(email=email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed("The password is too weak.", fields={"password": exc.messages}) from exc
    try:
        with transaction.atomic(durable=True):
            user = user_create(email=email, password=password)
    except IntegrityError as exc:
        raise ValidationFailed(
            "This email is already registered.", fields={"email": ["This email is already registered."]}
        ) from exc
    return user


def user_create(*, email: str, password: str | None) -> User:
    """A new trader with the defaults every sign-up gets (no password: social sign-in only).

    Runs inside the caller's transaction; the email must be normalized already.
    """
    user = User.objects.create_user(email=email, password=password)
    KycProfile.objects.create(user=user)
    return user


def user_authenticate(*, request, email: str, password: str) -> User:
    """Check email + password (failures count towards the lockout). Does not check 2FA."""
    user = authenticate(request, email=(email or "").strip().lower(), password=password)
    if user is None:
        raise InvalidCredentials("Email or password is incorrect.")
    return user


def auth_tokens_issue(*, request, email: str, password: str, otp: str | None) -> dict:
    """The API sign-in: a JWT pair, once the password and (if 2FA is on) a fresh code check out."""
    user = user_authenticate(request=request, email=email, password=password)
    if two_factor_enabled(user=user):
        if not otp:
            raise OtpRequired("This account has 2FA on: send the 6-digit code as `otp`.")
        otp_check(user=user, otp=otp)
    from . import safety_services
    from .models import UserSessionKind

    refresh = RefreshToken.for_user(user)
    # The sign-in is a session of its own: the tokens carry its id (``sid``), so a refresh
    # follows it and it can be revoked from the account's session list.
    session = safety_services.user_session_start(
        user=user, request=request, kind=UserSessionKind.TOKEN, token_jti=refresh[api_settings.JTI_CLAIM]
    )
    refresh[safety_services.SID_CLAIM] = session.pk
    # The same signal as a browser sign-in: last_login and the audit trail follow it.
    request.sign_in_method = "token"
    user_logged_in.send(sender=User, request=request, user=user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


class InvalidToken(DomainError):
    status = 401
    code = "token_invalid"


def auth_tokens_refresh(*, refresh: str, ip: str | None = None) -> dict:
    """Rotate a refresh token: a new pair, and the presented token is blacklisted. A token of
    a revoked session is refused.

    The outstanding-token row is locked so two concurrent uses of one refresh token cannot
    both succeed.
    """
    from . import safety_services

    try:
        with transaction.atomic(durable=True):
            token = RefreshToken(refresh)
            jti = token[api_settings.JTI_CLAIM]
            # order_by("pk"): the model's default ordering joins the (nullable) user, and
            # PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
            outstanding = OutstandingToken.objects.select_for_update().filter(jti=jti).order_by("pk").first()
            if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
                raise TokenError("used")
            session_id = token.get(safety_services.SID_CLAIM)
            if safety_services.token_session_revoked(session_id=session_id):
                raise TokenError("revoked")
            serializer = TokenRefreshSerializer(data={"refresh": refresh})
            serializer.is_valid(raise_exception=True)
            rotated = serializer.validated_data["refresh"]
            if session_id is not None:
                new_jti = RefreshToken(rotated, verify=False)[api_settings.JTI_CLAIM]
                safety_services.user_session_seen(session_id=session_id, ip=ip, token_jti=new_jti)
            return {"access": serializer.validated_data["access"], "refresh": rotated}
    except (TokenError, AuthenticationFailed, drf_serializers.ValidationError) as exc:
        raise InvalidToken("The refresh token is invalid, expired or already used.") from exc


def auth_tokens_revoke_all(*, user: User) -> int:
    """Blacklist every refresh token the user holds (after a password or 2FA change)."""
    revoked = 0
    for token in OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False):
        BlacklistedToken.objects.get_or_create(token=token)
        revoked += 1
    return revoked


# --- TOTP 2FA ----------------------------------------------------------------------------------


def reauthenticate(*, user: User, password: str, otp: str | None) -> None:
    """Sensitive changes ask again for the password and, with 2FA on, a fresh code."""
    if not password or not user.check_password(password):
        raise InvalidCredentials("The password is incorrect.", fields={"password": ["Incorrect password."]})
    if two_factor_enabled(user=user):
        if not otp:
            raise OtpRequired("Confirm with a code from your authenticator app.")
        otp_check(user=user, otp=otp)


@dataclass(frozen=True)
class TwoFactorSetup:
    otpauth_url: str
    qr_svg: str
    secret: str


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def two_factor_setup(*, user: User, password: str | None = None, otp: str | None = None) -> TwoFactorSetup:
    """Create a new (not yet active) TOTP device. Replacing an active one needs re-authentication."""
    if two_factor_enabled(user=user):
        reauthenticate(user=user, password=password or "", otp=otp)
    with transaction.atomic(durable=True):
        User.objects.select_for_update().get(pk=user.pk)
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name=PENDING_DEVICE_NAME, confirmed=False)
    return _setup_of(device)


def pending_setup(*, user: User) -> TwoFactorSetup | None:
    """The setup details of the device waiting for confirmation, if any (to show the QR again)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return _setup_of(device) if device else None


def _setup_of(device: TOTPDevice) -> TwoFactorSetup:
    return TwoFactorSetup(
        otpauth_url=device.config_url,
        qr_svg=_qr_svg(device.config_url),
        secret=base64.b32encode(device.bin_key).decode().rstrip("="),
    )


def two_factor_confirm(*, user: User, otp: str) -> TOTPDevice:
    """Activate the pending device with a code from it; it replaces any active device."""
    device, outcome = _verify_locked(TOTPDevice.objects.filter(user=user, confirmed=False), otp)
    if outcome == "no_device":
        raise ValidationFailed("Start 2FA setup first.", code="otp_setup_required")
    _raise_for(outcome)
    with transaction.atomic(durable=True):
        User.objects.select_for_update().get(pk=user.pk)
        replaced = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk)
        was_replacement = replaced.exists()
        replaced.delete()
        device.confirmed = True
        device.name = ACTIVE_DEVICE_NAME
        device.save(update_fields=["confirmed", "name"])
        if was_replacement:
            User.objects.filter(pk=user.pk).update(otp_reset_at=timezone.now())
        change = "replaced" if was_replacement else "enabled"
        record = audit_append(actor=user, action=f"auth.2fa_{change}", target=user, data={"user_email": user.email})
        signals.two_factor_changed.send(sender=User, user=user, actor=user, change=change, change_id=record.seq)
    return device


def two_factor_disable(*, user: User, password: str, otp: str | None) -> None:
    reauthenticate(user=user, password=password, otp=otp)
    with transaction.atomic(durable=True):
        User.objects.select_for_update().get(pk=user.pk)
        TOTPDevice.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).update(otp_reset_at=timezone.now())
        auth_tokens_revoke_all(user=user)
        record = audit_append(actor=user, action="auth.2fa_disabled", target=user, data={"user_email": user.email})
        signals.two_factor_changed.send(sender=User, user=user, actor=user, change="disabled", change_id=record.seq)


# --- credentials changes -------------------------------------------------------------------


def password_change(*, user: User, current_password: str, new_password: str, otp: str | None) -> None:
    reauthenticate(user=user, password=current_password, otp=otp)
    password_set(user=user, new_password=new_password)


def password_set(*, user: User, new_password: str) -> None:
    """Set a new password (after re-authentication or a reset link). 2FA stays as it was."""
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed("The new password is too weak.", fields={"new_password": exc.messages}) from exc
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.set_password(new_password)
        locked.password_changed_at = timezone.now()
        locked.save(update_fields=["password", "password_changed_at"])
        auth_tokens_revoke_all(user=locked)
        audit_append(actor=locked, action="auth.password_changed", target=locked)
        signals.password_changed.send(sender=User, user=locked)
    user.password = locked.password
    user.password_changed_at = locked.password_changed_at


def email_change(*, user: User, password: str, otp: str | None, new_email: str) -> User:
    reauthenticate(user=user, password=password, otp=otp)
    new_email = User.objects.normalize_email(new_email or "").strip().lower()
    try:
        with transaction.atomic(durable=True):
            User.objects.filter(pk=user.pk).update(email=new_email)
    except IntegrityError as exc:
        raise ValidationFailed(
            "This email is already registered.", fields={"new_email": ["Already registered."]}
        ) from exc
    user.email = new_email
    return user


# --- KYC ---------------------------------------------------------------------------------------

_DOCUMENT_SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
MIN_AGE_YEARS = 18


def _size_text(size: int) -> str:
    """1048576 -> "1 MB", 1572864 -> "1.5 MB", 500 -> "500 bytes" (the limit is configurable)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _sniff_document(document) -> str:
    """The document's real type from its first bytes; the client's declared type is not trusted."""
    head = document.read(16)
    document.seek(0)
    for content_type, signatures in _DOCUMENT_SIGNATURES.items():
        if any(head.startswith(signature) for signature in signatures):
            return content_type
    raise ValidationFailed(
        "The document must be a PDF, PNG or JPEG file.", fields={"document": ["Unsupported file type."]}
    )


def kyc_submit(*, user: User, full_name: str, country: str, date_of_birth: dt.date, document) -> KycProfile:
    errors: dict[str, list[str]] = {}
    full_name = (full_name or "").strip()
    country = (country or "").strip().upper()
    if len(full_name) < 3 or len(full_name.split()) < 2:
        errors["full_name"] = ["Enter your full legal name (first and last name)."]
    if len(country) != 2 or not country.isalpha():
        errors["country"] = ["Use the two-letter ISO country code, e.g. DE."]
    today = timezone.now().date()
    if date_of_birth is None or date_of_birth > today:
        errors["date_of_birth"] = ["Enter a valid date of birth."]
    elif (
        today.year - date_of_birth.year - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))
    ) < MIN_AGE_YEARS:
        errors["date_of_birth"] = [f"You must be at least {MIN_AGE_YEARS} years old."]
    if document is None:
        errors["document"] = ["Attach an identity document."]
    elif document.size > settings.KYC_DOCUMENT_MAX_BYTES:
        errors["document"] = [f"The file is larger than {_size_text(settings.KYC_DOCUMENT_MAX_BYTES)}."]
    elif document.size == 0:
        errors["document"] = ["The file is empty."]
    if errors:
        raise ValidationFailed("Some KYC details are invalid.", fields=errors)
    content_type = _sniff_document(document)

    with transaction.atomic(durable=True):
        profile, _ = KycProfile.objects.select_for_update().get_or_create(user=user)
        if profile.status in (KycStatus.PENDING, KycStatus.APPROVED):
            raise Conflict(
                f"Your verification is already {profile.get_status_display().lower()}.", code="kyc_already_submitted"
            )
        profile.full_name = full_name
        profile.country = country
        profile.date_of_birth = date_of_birth
        profile.document = document
        profile.document_content_type = content_type
        profile.status = KycStatus.PENDING
        profile.submitted_at = timezone.now()
        profile.decided_at = None
        profile.decided_by = None
        profile.rejection_reason = ""
        profile.save()
        # Identity details (name, birth date, document) stay in the KYC profile: an append-only
        # log is the wrong place for personal data.
        audit_append(
            actor=user,
            action="kyc.submitted",
            target=profile,
            data={
                "user_id": profile.user_id,
                "country": profile.country,
                "document_type": profile.document_content_type,
            },
        )
        signals.kyc_submitted.send(sender=KycProfile, profile=profile, actor=user)
    return profile


def kyc_decide(*, profile_id: int, actor: User | None, approve: bool, reason: str = "") -> KycProfile:
    """Staff decision on a pending submission (admin action or ``manage.py kyc_decide``)."""
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ValidationFailed("A rejection needs a reason.", fields={"reason": ["Required when rejecting."]})
    with transaction.atomic(durable=True):
        profile = KycProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            raise NotFound("No such KYC profile.")
        if profile.status != KycStatus.PENDING:
            raise Conflict(
                f"Only pending submissions can be decided (this one is {profile.status}).", code="kyc_not_pending"
            )
        profile.status = KycStatus.APPROVED if approve else KycStatus.REJECTED
        profile.rejection_reason = "" if approve else reason
        profile.decided_at = timezone.now()
        profile.decided_by = actor
        profile.save(update_fields=["status", "rejection_reason", "decided_at", "decided_by"])
        audit_append(
            actor=actor,
            action="kyc.approved" if approve else "kyc.rejected",
            target=profile,
            data={"user_id": profile.user_id, "status": profile.status, "reason": profile.rejection_reason},
        )
        signals.kyc_decided.send(sender=KycProfile, profile=profile, actor=actor)
    return profile
