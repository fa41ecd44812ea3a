from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class Theme(models.TextChoices):
    DARK = "dark", "Dark"
    LIGHT = "light", "Light"


class User(AbstractUser):
    """A trader or a staff member; signs in with email."""

    username = None
    email = models.EmailField("email address", unique=True)
    # Security-sensitive changes start a cooling-off period for withdrawals.
    password_changed_at = models.DateTimeField(null=True, blank=True)
    otp_reset_at = models.DateTimeField(null=True, blank=True, help_text="Last time 2FA was removed or replaced.")
    # Shown in every email the platform sends the trader, so a look-alike email without it is
    # recognisably not from us.
    anti_phishing_code = models.CharField(max_length=20, blank=True)
    # Whitelist-only withdrawals: on, withdrawals go only to the trader's address book. Turned
    # off, the book still binds until ``withdrawal_whitelist_off_at`` plus the cool-off.
    withdrawal_whitelist_only = models.BooleanField(default=False)
    withdrawal_whitelist_off_at = models.DateTimeField(null=True, blank=True)
    # How the pages look to this trader: times in their zone (the API stays in UTC).
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone the pages show times in.")
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.DARK)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.email


class KycStatus(models.TextChoices):
    NONE = "none", "Not submitted"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


def kyc_document_path(instance, filename):
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"kyc/{instance.user_id}/{timezone.now():%Y%m%d%H%M%S}.{suffix}"


class KycProfile(models.Model):
    """Identity verification: one per user, reviewed by staff in admin."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="kyc")
    status = models.CharField(max_length=16, choices=KycStatus.choices, default=KycStatus.NONE, db_index=True)
    full_name = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    date_of_birth = models.DateField(null=True, blank=True)
    document = models.FileField(upload_to=kyc_document_path, blank=True)
    document_content_type = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejection_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "KYC profile"
        ordering = ["submitted_at", "id"]

    def __str__(self):
        return f"KYC {self.user.email} ({self.status})"

    @property
    def tier(self) -> int:
        return 1 if self.status == KycStatus.APPROVED else 0


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read balances, orders and history"
    TRADE = "trade", "Place and cancel orders"
    WITHDRAW = "withdraw", "Request withdrawals"


class ApiKey(models.Model):
    """A trader's key for a bot: the public ``key`` names it, the secret signs each request
    (HMAC-SHA256). The secret is kept encrypted (it must be read to check a signature) and
    shown to the trader once, when the key is made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys")
    label = models.CharField(max_length=64)
    key = models.CharField(max_length=64, unique=True)
    secret_encrypted = models.BinaryField()
    scopes = models.JSONField(help_text="read, trade, withdraw")
    ip_allowlist = models.JSONField(default=list, blank=True, help_text="addresses or networks (CIDR); empty: any")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.label} ({self.key[:8]}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class UserSessionKind(models.TextChoices):
    BROWSER = "browser", "Browser session"
    TOKEN = "token", "API token (JWT refresh)"


class UserSession(models.Model):
    """One signed-in session of a trader: a browser session (its Django session key) or an
    API sign-in (its refresh token, rotated on every refresh: ``token_jti`` follows it), with
    the device and address it signed in from and when it was last seen."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_in_sessions")
    kind = models.CharField(max_length=8, choices=UserSessionKind.choices)
    session_key = models.CharField(max_length=64, blank=True, db_index=True)
    token_jti = models.CharField(max_length=255, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    device = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self):
        return f"{self.kind} session {self.pk} of {self.user_id} ({self.device or 'unknown device'})"
