from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from accounts import api_keys_api, preferences_api, preferences_web
from accounts import safety_api as accounts_safety_api
from accounts import safety_web as accounts_safety_web
from accounts import social_web as accounts_social_web
from accounts import web as accounts_web
from accounts.admin_site import PlatformAdminSite
from accounts.forms import ResetSetPasswordForm
from compliance import api as compliance_api
from compliance import reports_api as compliance_reports_api
from ledger import address_book_api as ledger_address_book_api
from ledger import address_book_web as ledger_address_book_web
from ledger import api as ledger_api
from ledger import web as ledger_web
from marketdata import api as marketdata_api
from marketdata import web as marketdata_web
from notifications import alerts_api
from notifications import api as notifications_api
from notifications import web as notifications_web
from ops import api as ops_api
from orders import urls as orders_urls
from portfolio import urls as portfolio_urls
from risk import api as risk_api
from settlement import urls as settlement_urls
from trading import (
    converters,  # noqa: F401  (registers <symbol:>, before any app's urls)
    health,
)
from trading.metrics import metrics_view

admin.site.__class__ = PlatformAdminSite

api_v1 = [
    path("auth/register", accounts_api.RegisterApi.as_view(), name="register"),
    path("auth/token", accounts_api.TokenApi.as_view(), name="token"),
    path("auth/token/refresh", accounts_api.TokenRefreshApi.as_view(), name="token_refresh"),
    path("auth/2fa/setup", accounts_api.TwoFactorSetupApi.as_view(), name="2fa_setup"),
    path("auth/2fa/confirm", accounts_api.TwoFactorConfirmApi.as_view(), name="2fa_confirm"),
    path("auth/2fa/disable", accounts_api.TwoFactorDisableApi.as_view(), name="2fa_disable"),
    path("auth/password", accounts_api.PasswordChangeApi.as_view(), name="password_change"),
    path("auth/email", accounts_api.EmailChangeApi.as_view(), name="email_change"),
    path("me", accounts_api.MeApi.as_view(), name="me"),
    path("me/settings", preferences_api.UserSettingsApi.as_view(), name="me_settings"),
    path("kyc", accounts_api.KycApi.as_view(), name="kyc"),
    path("api-keys", api_keys_api.ApiKeysApi.as_view(), name="api_keys"),
    path("api-keys/<int:key_id>/revoke", api_keys_api.ApiKeyRevokeApi.as_view(), name="api_key_revoke"),
    path("balances", ledger_api.BalancesApi.as_view(), name="balances"),
    path("ledger", ledger_api.LedgerApi.as_view(), name="ledger"),
    path("withdrawals", ledger_api.WithdrawalsApi.as_view(), name="withdrawals"),
    path("withdrawals/<int:withdrawal_id>", ledger_api.WithdrawalDetailApi.as_view(), name="withdrawal"),
    path("wallet/deposit-address", ledger_api.DepositAddressApi.as_view(), name="deposit_address"),
    path("wallet/faucet", ledger_api.FaucetApi.as_view(), name="faucet"),
    path("sessions", accounts_safety_api.SessionsApi.as_view(), name="sessions"),
    path(
        "sessions/revoke-others", accounts_safety_api.SessionsRevokeOthersApi.as_view(), name="sessions_revoke_others"
    ),
    path("sessions/<int:session_id>", accounts_safety_api.SessionRevokeApi.as_view(), name="session"),
    path("login-history", accounts_safety_api.LoginHistoryApi.as_view(), name="login_history"),
    path("anti-phishing-code", accounts_safety_api.AntiPhishingCodeApi.as_view(), name="anti_phishing_code"),
    path("withdrawal-addresses", ledger_address_book_api.WithdrawalAddressesApi.as_view(), name="withdrawal_addresses"),
    path(
        "withdrawal-addresses/mode",
        ledger_address_book_api.WithdrawalAddressModeApi.as_view(),
        name="withdrawal_address_mode",
    ),
    path(
        "withdrawal-addresses/<int:address_id>",
        ledger_address_book_api.WithdrawalAddressApi.as_view(),
        name="withdrawal_address",
    ),
    path(
        "withdrawals/<int:withdrawal_id>/cancel",
        ledger_address_book_api.WithdrawalCancelApi.as_view(),
        name="withdrawal_cancel",
    ),
    path("instruments", marketdata_api.InstrumentsApi.as_view(), name="instruments"),
    path("markets/<symbol:symbol>/ticker", marketdata_api.TickerApi.as_view(), name="ticker"),
    path("markets/<symbol:symbol>/orderbook", marketdata_api.OrderBookApi.as_view(), name="orderbook"),
    path("markets/<symbol:symbol>/trades", marketdata_api.TradesApi.as_view(), name="trades"),
    path("markets/<symbol:symbol>/candles", marketdata_api.CandlesApi.as_view(), name="candles"),
    path("options/chain", marketdata_api.OptionChainApi.as_view(), name="option_chain"),
    path("watchlist", marketdata_api.WatchlistApi.as_view(), name="watchlist"),
    path("watchlist/<symbol:symbol>", marketdata_api.WatchlistItemApi.as_view(), name="watchlist_item"),
    path("notifications", notifications_api.NotificationListApi.as_view(), name="notifications"),
    path("notifications/read-all", notifications_api.NotificationReadAllApi.as_view(), name="notifications-read-all"),
    path(
        "notifications/preferences",
        notifications_api.NotificationPreferencesApi.as_view(),
        name="notification-preferences",
    ),
    path("notifications/<int:notification_id>", notifications_api.NotificationDetailApi.as_view(), name="notification"),
    path(
        "notifications/<int:notification_id>/read",
        notifications_api.NotificationReadApi.as_view(),
        name="notification_read",
    ),
    path("alerts", alerts_api.PriceAlertListApi.as_view(), name="price_alerts"),
    path("alerts/<int:alert_id>", alerts_api.PriceAlertDetailApi.as_view(), name="price_alert"),
    path("risk/limits", risk_api.RiskLimitsApi.as_view(), name="risk_limits"),
    path("ops/risk/state", risk_api.OpsRiskStateApi.as_view(), name="ops_risk_state"),
    path("ops/aml/cases", compliance_api.OpsAmlCasesApi.as_view(), name="ops_aml_cases"),
    *orders_urls.api_v1,
    *settlement_urls.api_v1,
    *portfolio_urls.api_v1,
    *compliance_reports_api.urlpatterns,
    *ops_api.urlpatterns,
]

web = [
    path("", accounts_web.home, name="home"),
    path("signup/", accounts_web.signup, name="signup"),
    path("login/", accounts_web.login_view, name="login"),
    path("login/otp/", accounts_web.login_otp, name="login_otp"),
    path("logout/", accounts_web.logout_view, name="logout"),
    path("account/", accounts_web.account, name="account"),
    path("account/settings/", preferences_web.settings_page, name="account_settings"),
    path("account/password/", accounts_web.password_change, name="password_change"),
    path("account/email/", accounts_web.email_change, name="email_change"),
    path("account/2fa/", accounts_web.two_factor_setup, name="two_factor_setup"),
    path("account/2fa/disable/", accounts_web.two_factor_disable, name="two_factor_disable"),
    path("account/kyc/", accounts_web.kyc, name="kyc"),
    path("markets/", marketdata_web.markets, name="markets"),
    path("wallet/", ledger_web.wallet, name="wallet"),
    path("wallet/withdraw/", ledger_web.withdraw, name="withdraw"),
    path("wallet/faucet/", ledger_web.faucet, name="faucet"),
    path("wallet/addresses/", ledger_web.address_add, name="withdrawal_address_add"),
    path("wallet/addresses/mode/", ledger_address_book_web.address_mode, name="withdrawal_address_mode"),
    path(
        "wallet/addresses/<int:address_id>/delete/",
        ledger_address_book_web.address_delete,
        name="withdrawal_address_delete",
    ),
    path(
        "wallet/withdrawals/<int:withdrawal_id>/cancel/",
        ledger_address_book_web.withdrawal_cancel,
        name="withdrawal_cancel",
    ),
    path("account/sessions/revoke-others/", accounts_safety_web.sessions_revoke_others, name="sessions_revoke_others"),
    path("account/sessions/<int:session_id>/revoke/", accounts_safety_web.session_revoke, name="session_revoke"),
    path("account/anti-phishing/", accounts_web.anti_phishing_code, name="anti_phishing_code"),
    path("notifications/", notifications_web.inbox, name="notifications"),
    path("notifications/preferences/", notifications_web.preferences, name="notification_preferences"),
    path("notifications/mailbox/", notifications_web.mailbox, name="notification_mailbox"),
    path("alerts/", notifications_web.alerts, name="price_alerts"),
    *orders_urls.web,
    *settlement_urls.web,
    *portfolio_urls.web,
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            email_template_name="accounts/password_reset_email.txt",
            success_url="/password-reset/sent/",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_sent.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            form_class=ResetSetPasswordForm,
            success_url="/login/",
            post_reset_login=False,
        ),
        name="password_reset_confirm",
    ),
]

urlpatterns = [
    path("", include((web, "web"))),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger"),
    path("admin/", admin.site.urls),
    # Social login's provider round trip (README "Accounts and security"); the callback is the
    # redirect URI to register at the provider.
    path("accounts/oidc/<str:provider_id>/login/", accounts_social_web.provider_login, name="openid_connect_login"),
    path(
        "accounts/oidc/<str:provider_id>/login/callback/",
        accounts_social_web.provider_callback,
        name="openid_connect_callback",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "trading.errors.json_bad_request"
handler403 = "trading.errors.json_permission_denied"
handler404 = "trading.errors.json_not_found"
handler500 = "trading.errors.json_server_error"
