"""Events the apps above accounts react to (notifications) without accounts importing them.
The audit trail is not one of them: accounts records to it directly (``trading.audit``)."""

from django.dispatch import Signal

# Sent inside the writing transaction, so receivers' rows (notifications) commit or roll back
# with the event itself.
# kwargs: profile (KycProfile), actor (User or None)
kyc_submitted = Signal()
kyc_decided = Signal()
# Sent inside the sign-in's transaction when the account signs in from a device and address
# it never signed in from before. kwargs: user, login_id (its audit record's number), ip,
# user_agent, at
new_sign_in = Signal()
# kwargs: user, actor, change ("enabled" | "replaced" | "disabled"), change_id (its audit record's number)
two_factor_changed = Signal()
# kwargs: user
password_changed = Signal()
# Sent after a refused 2FA code has been counted (outside any business transaction).
# kwargs: user, reason ("invalid" | "used" | "throttled")
otp_failed = Signal()
# Sent inside the writing transaction. kwargs: api_key (ApiKey), change ("created" | "revoked")
api_key_changed = Signal()
# Sent inside the writing transaction. kwargs: user, enabled (bool), enforced_until (datetime or None),
# change_id (its audit record's number)
withdrawal_whitelist_changed = Signal()
