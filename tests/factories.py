"""Test data factories."""

import factory
from django.contrib.auth.hashers import Argon2PasswordHasher
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import KycProfile, User

DEFAULT_PASSWORD = "correct-Horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"trader{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def kyc(self, create, extracted, **kwargs):
        if create:
            KycProfile.objects.get_or_create(user=self)
            self.save()


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


def enable_totp(user) -> TOTPDevice:
    """Give ``user`` an active TOTP device (as if set up and confirmed)."""
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def totp_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    """The code an authenticator app would show now (or ``offset_steps`` steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if offset_steps:
        totp.time = totp.time + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 with test-sized cost (the production parameters take ~0.3 s per hash).

    Same algorithm and code path, so hashes still start with ``argon2``; the cost
    parameters are encoded in each hash, so verification needs no special casing.
    """

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
