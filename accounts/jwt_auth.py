"""The API's bearer-token authentication: simplejwt's, with the trader's KYC profile read in
the same statement as the user. Order entry's risk checks need the KYC tier on every order;
read with the user, it costs a join instead of a statement of its own."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication

from .models import User
from .selectors import REQUEST_KYC_TIER, kyc_tier_from_joined


class _UsersWithKyc:
    """What simplejwt's ``get_user`` asks of its user model: ``objects.get`` and ``DoesNotExist``."""

    DoesNotExist = User.DoesNotExist

    @property
    def objects(self):
        return User.objects.select_related("kyc")


class JWTAuthentication(authentication.JWTAuthentication):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user_model = _UsersWithKyc()

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        setattr(user, REQUEST_KYC_TIER, kyc_tier_from_joined(user=user))
        return user


class JWTSchema(SimpleJWTScheme):
    target_class = "accounts.jwt_auth.JWTAuthentication"
