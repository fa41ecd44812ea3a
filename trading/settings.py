"""Settings for the trading platform, read from the environment (django-environ).

Two runtime modes share every code path:

* **embedded** (no ``DATABASE_URL`` / ``REDIS_URL``): SQLite in WAL mode, the in-memory
  channel layer, a local-memory cache and Celery tasks executed in-process. ``make run``
  uses it, so the platform starts with no server installed.
* **stack** (``DATABASE_URL`` and ``REDIS_URL`` set): PostgreSQL, and Redis as Celery
  broker, cache and channel layer. ``make stack`` and ``make test`` use it.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
PLATFORM_NAME = env("PLATFORM_NAME", default="Meridian Exchange")
# Where the pages open their websockets (/ws/...): empty = the page's own origin (one server,
# as in embedded mode, or a proxy that sends /ws/ to daphne and the rest to gunicorn);
# ":8001" = the page's host at that port (the stack on one machine, scripts/supervise sets
# it); "wss://ws.example.com" = that base. docs/operations.md, "Web processes".
WS_PUBLIC_URL = env.str("WS_PUBLIC_URL", default="")
# The embedded mode (a local demo) may run on this published key; nothing else may.
EMBEDDED_SECRET_KEY = "insecure-embedded-mode-key-set-SECRET_KEY-in-production"
SECRET_KEY = env("SECRET_KEY", default=EMBEDDED_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL


def _refuse_unsafe_key(name: str, value: str) -> None:
    """Stack mode signs sessions, password-reset links and JWTs with this key: one that is
    missing, published or short lets anyone sign in as anyone, so the process does not start."""
    problem = (
        "is not set"
        if not env.str(name, default="")
        else "is the embedded mode's published demo key"
        if value == EMBEDDED_SECRET_KEY
        else f"is only {len(value)} characters long"
        if len(value) < 50
        else ""
    )
    if problem:
        raise SystemExit(
            f"Refusing to start: {name} {problem}. With a database URL (stack mode) the platform needs a secret "
            f"of at least 50 random characters. Set {name}, e.g. to the output of\n"
            "    python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )


if not EMBEDDED:
    _refuse_unsafe_key("SECRET_KEY", SECRET_KEY)
    if "JWT_SIGNING_KEY" in env.ENVIRON:
        _refuse_unsafe_key("JWT_SIGNING_KEY", env("JWT_SIGNING_KEY"))

# Behind TLS in production: secure cookies, HSTS and the HTTPS redirect follow HTTPS.
# Embedded mode is a local demo on http://127.0.0.1, so it defaults to plain HTTP.
HTTPS = env.bool("HTTPS", default=not (DEBUG or EMBEDDED))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "channels",
    "axes",
    "django_guid",
    "trading",
    "accounts",
    "ledger",
    "marketdata",
    "venues",
    "notifications",
    "risk",
    "orders",
    "settlement",
    "portfolio",
    "compliance",
    "ops",
]

MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "trading.parsers.RefuseControlCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "trading.metrics.RequestMetricsMiddleware",  # after static files: it times the app's views
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.DisplayTimeZoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.session_seen.SessionSeenMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "trading.urls"
WSGI_APPLICATION = "trading.wsgi.application"
ASGI_APPLICATION = "trading.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trading.context_processors.platform",
                "notifications.context_processors.unread",
                "accounts.context_processors.display",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "var" / "embedded.sqlite3")),
            "OPTIONS": {
                # WAL lets readers run beside the single writer; IMMEDIATE takes the write
                # lock at BEGIN so two writers queue instead of failing on lock upgrade.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if env.int("DB_POOL_SIZE", default=0):
        # The web server (Procfile): daphne runs each request's view in a thread of its own
        # context, and a persistent connection per such thread is never reused or closed —
        # under load they exhaust PostgreSQL's connection limit. A process-wide pool lends
        # each request a connection and takes it back at the end.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # The pool checks a connection before lending it (an empty query, ~35 µs locally):
        # after a PostgreSQL restart it would otherwise lend each dead one once, a 500 each.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": env.int("DB_POOL_SIZE"),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer, Celery --------------------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Bounded waits: a Redis that stops answering (a network cut rather than a refused
            # connection) must fail a cache call, not hang the engine runner holding its lease.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        # No socket timeout: channels_redis blocks 5 s per receive, and redis-py's default
        # timeout of the same length would turn an idle wait into an error.
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    # Embedded mode: tasks run in-process, in the caller, after the commit that queued them.
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# Separate queues let several platforms (or test runs) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CONSUMER = "trading.celery_consumer:Consumer"
# Retry for as long as the broker is away (Celery gives up after 100 attempts by default,
# which at half a second each would end a worker during a minute-long outage).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Publishers (the relay above all) fail fast while the broker is down and hold their work;
# they must not block in connection retries and come back late.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# --- Auth and security -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
# Where a trader lands after signing in (unless ?next= names a page): the trade page.
LOGIN_REDIRECT_URL = "web:trade"
LOGOUT_REDIRECT_URL = "web:login"

OTP_TOTP_ISSUER = env("OTP_ISSUER", default=PLATFORM_NAME)
OTP_TOTP_THROTTLE_FACTOR = 1

# Social login: OpenID Connect providers from OIDC_PROVIDERS (trading/oidc_settings.py, README
# "Accounts and security"). django-allauth runs only the provider round trip; the login page,
# the 2FA step, the sign-up service and the login history stay the project's (accounts/social.py).
from trading.oidc_settings import oidc_apps  # noqa: E402

INSTALLED_APPS += [
    "allauth",
    "accounts.allauth_apps.SocialLoginEmailsConfig",  # allauth.account, under its own name
    "accounts.allauth_apps.SocialLoginConfig",  # allauth.socialaccount, under its own name
    "allauth.socialaccount.providers.openid_connect",
]
MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
ACCOUNT_ADAPTER = "accounts.social.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.social.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # the login page's buttons POST (CSRF-protected)
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = env.int("OIDC_TIMEOUT_SECONDS", default=10)
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": oidc_apps(env.str("OIDC_PROVIDERS", default=""))}
}

# Repeated password failures lock the (email, IP) pair out for a cool-off period.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "email"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "trading.errors.lockout_response"
AXES_VERBOSE = False
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=False) else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- REST API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.jwt_auth.JWTAuthentication",
        "accounts.api_key_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "trading.parsers.JSONParser",
        "trading.parsers.MultiPartParser",
        "trading.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "trading.schema.PlatformAutoSchema",
    "EXCEPTION_HANDLER": "trading.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        "auth": env("THROTTLE_AUTH", default="30/min"),
        "otp": env("THROTTLE_OTP", default="10/min"),
    },
}
# API keys (accounts/api_keys.py): a signed request's X-API-TIMESTAMP may be this far from
# the server's clock; the key that encrypts the keys' secrets (keep the old SECRET_KEY here
# when rotating it); how many active keys one account may have.
API_KEY_RECV_WINDOW_MS = env.int("API_KEY_RECV_WINDOW_MS", default=5000)
API_KEY_ENCRYPTION_KEY = env.str("API_KEY_ENCRYPTION_KEY", default=SECRET_KEY)
API_KEYS_MAX_PER_USER = env.int("API_KEYS_MAX_PER_USER", default=20)
# Account safety: a new withdrawal address is usable this long after it is added; turning
# whitelist-only withdrawals off leaves the address book binding this long.
WITHDRAWAL_ADDRESS_DELAY_HOURS = env.float("WITHDRAWAL_ADDRESS_DELAY_HOURS", default=24.0)
WITHDRAWAL_WHITELIST_OFF_COOLOFF_HOURS = env.float("WITHDRAWAL_WHITELIST_OFF_COOLOFF_HOURS", default=24.0)
# JSON request bodies: at most this large and this deeply nested (trading/parsers.py).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=256 * 1024)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default=SECRET_KEY),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trading Platform API",
    "DESCRIPTION": "Spot exchange and USDT-mode options. Errors: "
    '`{"error": {"code", "message", "fields"}}`; amounts are decimal strings.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Response objects are closed (additionalProperties: false): the schema states every field.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "trading.schema.closed_response_objects",
    ],
    # Several responses have a `status` or `kind` with its own values: each set gets a name.
    "ENUM_NAME_OVERRIDES": {
        "KycStatusEnum": "accounts.models.KycStatus",
        "WithdrawalStatusEnum": "ledger.models.WithdrawalStatus",
        "TransferKindEnum": "ledger.models.TransferKind",
        "SpotOrderStatusEnum": "orders.models.SpotStatus",
        "OptionPositionStatusEnum": "orders.models.PositionStatus",
        "OptionOrderStatusEnum": ["filled"],
        "OptionOrderKindEnum": ["open", "close"],
        "SettlementRecordStateEnum": "settlement.models.State",
        "TradingStateEnum": "risk.core.STATES",
        "RiskScopeEnum": "risk.core.SCOPES",
        "OptionTypeEnum": ["call", "put"],
        "OptionTypeLetterEnum": ["C", "P"],  # the portfolio's option lines: the series' letter
        "CostMethodEnum": ["fifo", "average"],  # the portfolio's and the tax report's lot matching
        "SignInMethodEnum": ["password", "2fa", "token"],  # the login history's
    },
}

# --- I18N, static, media ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Files browsers ask for at the site's root (the icon every page's tab shows).
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
# KYC documents are private: kept outside any served directory, read only through admin.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "private"))
KYC_DOCUMENT_MAX_BYTES = env.int("KYC_DOCUMENT_MAX_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="no-reply@trading.local")
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend sends through this server;
# ...filebased.EmailBackend writes each message to a file in EMAIL_FILE_PATH.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
# An email provider's API instead of SMTP (django-anymail): EMAIL_BACKEND=anymail.backends.<provider>.EmailBackend
# (mailgun, postmark, sendgrid, amazon_ses...) and its settings as JSON, e.g.
# ANYMAIL='{"POSTMARK_SERVER_TOKEN": "..."}'.
ANYMAIL = env.json("ANYMAIL", default={})
# Email and webhook deliveries of notifications: tries before giving up, and the backoff
# between them (doubling from the base, capped).
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=8)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=5.0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=3600.0)
# A delivery being sent is not taken by another sender for this long (longer than one
# attempt may last: EMAIL_TIMEOUT, the webhook's 5 s); a sender that died mid-send leaves it
# to the sweep once this and NOTIFICATIONS_SWEEP_GRACE_SECONDS are over.
NOTIFICATIONS_CLAIM_SECONDS = env.float("NOTIFICATIONS_CLAIM_SECONDS", default=60.0)
# The stack's sweep queues a delivery again only once it is this many seconds past due (its
# own task may still be on its way).
NOTIFICATIONS_SWEEP_GRACE_SECONDS = env.float("NOTIFICATIONS_SWEEP_GRACE_SECONDS", default=30.0)
# The partial fills of one order within this many seconds make one message.
NOTIFICATIONS_COALESCE_SECONDS = env.int("NOTIFICATIONS_COALESCE_SECONDS", default=2)
# Webhooks may reach private and loopback addresses (a local receiver) only when this is on.
NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = env.bool("NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE", default=DEBUG or EMBEDDED)

# --- Logging ---------------------------------------------------------------------------------
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "RETURN_HEADER": True, "VALIDATE_GUID": False}
LOG_JSON = env.bool("LOG_JSON", default=not EMBEDDED)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId", "correlation_id_field": "request_id"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_guid": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

LEDGER_SYSTEM_BUCKETS = env.int("LEDGER_SYSTEM_BUCKETS", default=16)

# --- Platform --------------------------------------------------------------------------------
DEMO_MODE = env.bool("DEMO_MODE", default=EMBEDDED)
# Embedded mode runs the singletons (feed, ...) as threads of the web process.
EMBEDDED_WORKERS = env.bool("EMBEDDED_WORKERS", default=EMBEDDED)
FEED_SEED = env.int("FEED_SEED", default=20261121)
# Real exchanges for the index, as ccxt ids (e.g. "binance,okx,kraken"); empty = simulator only.
FEED_CCXT_EXCHANGES = env.list("FEED_CCXT_EXCHANGES", default=[])
FEED_INTERVAL_SECONDS = env.float("FEED_INTERVAL_SECONDS", default=1.0)
# An index print older than this is stale: option prices and index-dependent trading refuse.
INDEX_MAX_AGE_SECONDS = env.float("INDEX_MAX_AGE_SECONDS", default=15.0)
# The options counter's spread (marketdata/pricing/spread.py, docs/options.md): a half-spread of
# OPTION_SPREAD_VOL_POINTS volatility points on the contract's vega (up to 1 + SHORT_BOOST times
# that in the last SHORT_DAYS), plus DELTA_BPS of the hedged notional; at most CAP of the price,
# at least MIN_USDT. The bid is never below intrinsic value less INTRINSIC_FEE_BPS of the index.
OPTION_SPREAD_VOL_POINTS = {
    "BTC": env.float("OPTION_SPREAD_VOL_POINTS_BTC", default=0.75),
    "ETH": env.float("OPTION_SPREAD_VOL_POINTS_ETH", default=1.0),
}
OPTION_SPREAD_SHORT_BOOST = env.float("OPTION_SPREAD_SHORT_BOOST", default=0.5)
OPTION_SPREAD_SHORT_DAYS = env.float("OPTION_SPREAD_SHORT_DAYS", default=7.0)
OPTION_SPREAD_DELTA_BPS = env.float("OPTION_SPREAD_DELTA_BPS", default=1.0)
OPTION_SPREAD_CAP = env.float("OPTION_SPREAD_CAP", default=0.15)
OPTION_SPREAD_MIN_USDT = env.float("OPTION_SPREAD_MIN_USDT", default=0.01)
OPTION_BID_INTRINSIC_FEE_BPS = env.float("OPTION_BID_INTRINSIC_FEE_BPS", default=5.0)
CSRF_FAILURE_VIEW = "trading.errors.csrf_failure"

# --- Options counter (orders) ----------------------------------------------------------------
# A counter quote is firm for this long, and refused if the index moved more than the
# tolerance (a fraction of the index) since it was given.
OPTION_QUOTE_TTL_SECONDS = env.float("OPTION_QUOTE_TTL_SECONDS", default=10.0)
OPTION_QUOTE_INDEX_TOLERANCE = env.float("OPTION_QUOTE_INDEX_TOLERANCE", default=0.005)
# No quotes or orders for a series this close to its expiry (the settlement TWAP is running
# and the expiry run must see every position).
OPTION_TRADING_CUTOFF_SECONDS = env.float("OPTION_TRADING_CUTOFF_SECONDS", default=60.0)
# Buying to open needs approved KYC (as withdrawals do); selling to close never does.
OPTION_KYC_REQUIRED = env.bool("OPTION_KYC_REQUIRED", default=True)
# The settlement price at expiry: the index's time-weighted average over this many minutes.
OPTION_SETTLEMENT_TWAP_MINUTES = env.int("OPTION_SETTLEMENT_TWAP_MINUTES", default=30)
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    # Expiries are at 08:00 UTC; the run is idempotent, and retries itself until the TWAP exists.
    "options-expire": {"task": "orders.tasks.options_expire", "schedule": crontab(minute=0, hour=8)},
    "options-quotes-purge": {"task": "orders.tasks.option_quotes_purge", "schedule": crontab(minute=17)},
    "smart-orders-resolve": {"task": "orders.tasks.smart_orders_resolve", "schedule": 5.0},
    # Email and webhook deliveries that are due and not sent (a lost message, a retry's backoff over).
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 5.0, "options": {"expires": 5.0}},
    # Every trader's portfolio value at the close of the UTC day (and any closed day missed).
    "portfolio-daily-snapshots": {"task": "portfolio.tasks.daily_snapshots", "schedule": crontab(minute=0, hour=0)},
    # Each trader's portfolio summary, after the snapshots: the day just ended, and on Mondays the week.
    "portfolio-daily-digest": {
        "task": "portfolio.tasks.digests",
        "schedule": crontab(minute=10, hour=0),
        "args": ("daily",),
    },
    "portfolio-weekly-digest": {
        "task": "portfolio.tasks.digests",
        "schedule": crontab(minute=10, hour=0, day_of_week="mon"),
        "args": ("weekly",),
    },
}

# --- Portfolio ----------------------------------------------------------------------------------
# Each trader's replayed lots are cached and extended with what is new; off only to measure
# what the cache saves (bench/portfolio.py).
PORTFOLIO_BOOK_CACHE = env.bool("PORTFOLIO_BOOK_CACHE", default=True)
# Rebalancing (docs/portfolio.md): the drift from the targets a trader accepts unless they say
# otherwise, and the share of the portfolio in one asset (USDT aside) above which the
# Portfolio page suggests spreading it.
PORTFOLIO_REBALANCE_TOLERANCE = env.str("PORTFOLIO_REBALANCE_TOLERANCE", default="0.02")
PORTFOLIO_CONCENTRATION_THRESHOLD = env.str("PORTFOLIO_CONCENTRATION_THRESHOLD", default="0.60")
# A rebalance waits this long for its sells to trade before it enters the buys (market orders
# end within milliseconds while the engine runs); a batch left placing longer than
# PORTFOLIO_REBALANCE_RESUME_SECONDS (its request died) is finished by the next replay.
PORTFOLIO_REBALANCE_WAIT_SECONDS = env.float("PORTFOLIO_REBALANCE_WAIT_SECONDS", default=5.0)
PORTFOLIO_REBALANCE_RESUME_SECONDS = env.float("PORTFOLIO_REBALANCE_RESUME_SECONDS", default=30.0)

# --- Compliance reports -------------------------------------------------------------------------
# The key of the traders' pseudonymous references in the regulator's daily transaction
# report (docs/compliance.md, "Reports"): the same key gives the same references report after
# report, so keep it when SECRET_KEY rotates.
REPORT_USER_REFERENCE_KEY = env.str("REPORT_USER_REFERENCE_KEY", default=SECRET_KEY)

# --- Compliance: AML monitoring (docs/compliance.md) ------------------------------------------
# A trader's score is, per rule, the strongest weighted alert within the score window; a case
# opens when it reaches the threshold. Countries are ISO 3166-1 alpha-2 codes (FATF's
# "call for action" list by default); the sign-in's country comes from the edge's header.
AML_CASE_THRESHOLD = env.int("AML_CASE_THRESHOLD", default=60)
# An open case older than this is past its review SLA (the compliance dashboard counts them).
AML_CASE_SLA_HOURS = env.int("AML_CASE_SLA_HOURS", default=48)
# A withdrawal by a trader whose AML score reaches the review score is held as aml_review (staff
# decide it); from the block score it is refused (compliance/decisions.py).
AML_WITHDRAWAL_REVIEW_SCORE = env.int("AML_WITHDRAWAL_REVIEW_SCORE", default=60)
AML_WITHDRAWAL_BLOCK_SCORE = env.int("AML_WITHDRAWAL_BLOCK_SCORE", default=150)
AML_SCORE_WINDOW_DAYS = env.int("AML_SCORE_WINDOW_DAYS", default=30)
AML_HIGH_RISK_COUNTRIES = env.list("AML_HIGH_RISK_COUNTRIES", default=["KP", "IR", "MM"])
AML_COUNTRY_HEADER = env.str("AML_COUNTRY_HEADER", default="HTTP_CF_IPCOUNTRY")
AML_LARGE_TRADE_USDT = env.str("AML_LARGE_TRADE_USDT", default="50000")

# --- Compliance: sanctions screening and the travel rule (docs/compliance.md) ----------------------
# A name scoring at least this (0-100, rapidfuzz's token-sort ratio after normalizing) against a
# listed name is a hit; addresses must match exactly. The list is loaded by manage.py sanctions_load.
SANCTIONS_NAME_THRESHOLD = env.float("SANCTIONS_NAME_THRESHOLD", default=88.0)
# Withdrawals worth at least this many USD need the beneficiary's details (FATF R.16, EU 2023/1113).
TRAVEL_RULE_THRESHOLD_USD = env.int("TRAVEL_RULE_THRESHOLD_USD", default=1000)
CELERY_BEAT_SCHEDULE.update(
    {
        "aml-scan-nightly": {"task": "compliance.aml_scan_nightly", "schedule": crontab(minute=30, hour=1)},
        "aml-large-trades": {"task": "compliance.aml_large_trades", "schedule": 60.0, "options": {"expires": 60.0}},
    }
)

# --- Settlement back office ------------------------------------------------------------------
SETTLEMENT_VENUE = env.str("SETTLEMENT_VENUE", default="simulated")
SETTLEMENT_VENUE_FAULTS = env.str("SETTLEMENT_VENUE_FAULTS", default="")
# Where the simulated venue keeps its orders in Redis (several platforms may share one).
SETTLEMENT_VENUE_KEY_PREFIX = env.str("SETTLEMENT_VENUE_KEY_PREFIX", default="settlement:venue:sim")
# SETTLEMENT_VENUE=ccxt:<exchange id>: the account's keys, each call's timeout, the exchange's sandbox.
SETTLEMENT_VENUE_API_KEY = env.str("SETTLEMENT_VENUE_API_KEY", default="")
SETTLEMENT_VENUE_SECRET = env.str("SETTLEMENT_VENUE_SECRET", default="")
SETTLEMENT_VENUE_TIMEOUT_MS = env.int("SETTLEMENT_VENUE_TIMEOUT_MS", default=10_000)
SETTLEMENT_VENUE_SANDBOX = env.bool("SETTLEMENT_VENUE_SANDBOX", default=False)
# Settlements travel through the steps in micro-batches of up to this many.
SETTLEMENT_BATCH_SIZE = env.int("SETTLEMENT_BATCH_SIZE", default=200)
# How long an executor may hold a settlement's current step before another may take it.
SETTLEMENT_CLAIM_SECONDS = env.float("SETTLEMENT_CLAIM_SECONDS", default=15.0)
# A settlement idle this long in a non-final state is re-enqueued by the recovery sweep.
SETTLEMENT_IDLE_SECONDS = env.float("SETTLEMENT_IDLE_SECONDS", default=10.0)
SETTLEMENT_MAX_ATTEMPTS = env.int("SETTLEMENT_MAX_ATTEMPTS", default=8)
SETTLEMENT_RETRY_BASE_SECONDS = env.float("SETTLEMENT_RETRY_BASE_SECONDS", default=0.2)
SETTLEMENT_RETRY_MAX_SECONDS = env.float("SETTLEMENT_RETRY_MAX_SECONDS", default=10.0)
SETTLEMENT_RECONCILE_AFTER_SECONDS = env.float("SETTLEMENT_RECONCILE_AFTER_SECONDS", default=3.0)
# An event published to the intake (by the relay or the reconciliation) counts as queued this
# long: the reconciliation re-publishes a missing event at most once per this period. Longer
# than the broker backlog you expect to ride out; a broker that loses its messages loses
# these marks with them, so its events go again at once.
SETTLEMENT_RECONCILE_QUEUED_SECONDS = env.float("SETTLEMENT_RECONCILE_QUEUED_SECONDS", default=120.0)
SETTLEMENT_CLIENT_ID_PREFIX = env.str("SETTLEMENT_CLIENT_ID_PREFIX", default="stl")
# Step 3 (the venue round trips) runs on this queue, served by the Procfile's `venue` worker
# (a thread pool), so intake workers never wait for a venue. Empty: the intake task runs
# step 3 itself.
SETTLEMENT_VENUE_QUEUE = env.str("SETTLEMENT_VENUE_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}.venue")
# A venue whose adapter knows its round trip to be within this many ms is called by the intake
# itself for batches of up to SETTLEMENT_VENUE_INLINE_BATCH: one hop, one claim and one commit
# fewer than the venue queue. Slower or unknown venues, and larger batches (a backlog), go to
# the venue queue. 0: always the queue.
SETTLEMENT_VENUE_INLINE_MS = env.float("SETTLEMENT_VENUE_INLINE_MS", default=25.0)
SETTLEMENT_VENUE_INLINE_BATCH = env.int("SETTLEMENT_VENUE_INLINE_BATCH", default=50)
# Venue calls in flight per process running step 3: a batch's orders all go out at once.
SETTLEMENT_VENUE_CONCURRENCY = env.int("SETTLEMENT_VENUE_CONCURRENCY", default=512)
RELAY_POLL_SECONDS = env.float("RELAY_POLL_SECONDS", default=0.25)
RELAY_BATCH_SIZE = env.int("RELAY_BATCH_SIZE", default=1000)
# The relay takes small batches for a fast venue in itself (the resident intake: no broker
# hop on the way to the venue swap); 0 sends every batch through the broker.
RELAY_TAKE_IN = env.bool("RELAY_TAKE_IN", default=True)
# A take-in that lasted over a quarter of the relay's lease TTL (the lease is renewed between
# rounds) sends the next batches through the broker for this long.
RELAY_TAKE_IN_PAUSE_SECONDS = env.float("RELAY_TAKE_IN_PAUSE_SECONDS", default=5.0)
# How long the relay lets a burst of events gather before it publishes them together.
RELAY_LINGER_SECONDS = env.float("RELAY_LINGER_SECONDS", default=0.005)
# The relay saves its cursor at most this often (a crash re-publishes at most that much; the
# intake ignores duplicates), and holds events up to RELAY_HOLD_SECONDS while the broker still
# has intake messages no worker has taken (they then travel together).
RELAY_CHECKPOINT_SECONDS = env.float("RELAY_CHECKPOINT_SECONDS", default=0.1)
RELAY_HOLD_SECONDS = env.float("RELAY_HOLD_SECONDS", default=0.05)
# /readyz reports the relay not ready when the oldest unpublished event is older than this.
RELAY_READY_MAX_LAG_SECONDS = env.float("RELAY_READY_MAX_LAG_SECONDS", default=30.0)
# The simulated venue prices fills from an index read at most this long ago.
SETTLEMENT_VENUE_PRICE_TTL_SECONDS = env.float("SETTLEMENT_VENUE_PRICE_TTL_SECONDS", default=0.5)
CELERY_BEAT_SCHEDULE.update(
    {
        # A sweep that waited longer than its period (the workers were down) is dropped: the
        # next one does its work, and twenty stale ones in a row would only repeat it.
        "settlement-reconcile": {
            "task": "settlement.reconcile",
            "schedule": env.float("SETTLEMENT_RECONCILE_EVERY", default=3.0),
            "options": {"expires": env.float("SETTLEMENT_RECONCILE_EVERY", default=3.0)},
        },
        "settlement-recover": {
            "task": "settlement.recover",
            "schedule": env.float("SETTLEMENT_RECOVER_EVERY", default=5.0),
            "options": {"expires": env.float("SETTLEMENT_RECOVER_EVERY", default=5.0)},
        },
    }
)
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)

# --- Spot exchange ------------------------------------------------------------------------------
# Fees are taken from the asset received: makers and takers pay these fractions of it.
SPOT_MAKER_FEE = env.str("SPOT_MAKER_FEE", default="0.001")
SPOT_TAKER_FEE = env.str("SPOT_TAKER_FEE", default="0.002")
# Market orders trade at most this far through the best price (engine) and, for buys, the
# hold assumes the index plus this much (order entry): a buy never spends past its hold.
SPOT_MARKET_BAND = env.str("SPOT_MARKET_BAND", default="0.05")

# --- Risk (docs/risk.md) -----------------------------------------------------------------------
# The platform's default of every pre-trade limit (decimal strings; a dict sets it per symbol,
# underlying or asset, "*" for the rest). Staff override any of them per target, per KYC tier
# and per user in the admin (Risk limits); the most specific wins.
_PRICE_BAND = env.str("SPOT_PRICE_BAND", default="0.10")
RISK_LIMITS = {
    # a limit or stop price this far from the index, by side and direction (price_out_of_band)
    "buy_band_above": _PRICE_BAND,
    "buy_band_below": _PRICE_BAND,
    "sell_band_above": _PRICE_BAND,
    "sell_band_below": _PRICE_BAND,
    # order value in USDT (min_notional: each pair's own unless overridden; max_order_size)
    "max_notional": env.str("SPOT_MAX_ORDER_NOTIONAL", default="1000000"),
    # quantity per order, market orders separately (risk_limit)
    "max_order_quantity": {"BTC-USDT": "100", "ETH-USDT": "2000"},
    "max_market_quantity": {"BTC-USDT": "20", "ETH-USDT": "400"},
    "max_open_orders": str(env.int("SPOT_MAX_OPEN_ORDERS", default=200)),  # max_open_orders
    # what a buy may bring a holding to (risk_limit)
    "max_position": {"BTC": "500", "ETH": "10000"},
    # options, per trader: contracts of one series, premium of all open positions (position_limit)
    "max_series_contracts": {
        "BTC": env.str("OPTION_POSITION_LIMIT_BTC", default="50"),
        "ETH": env.str("OPTION_POSITION_LIMIT_ETH", default="500"),
    },
    "max_option_premium": env.str("OPTION_EXPOSURE_LIMIT_USDT", default="250000"),
    # orders per second per trader (spot and options together), and the burst above it (rate_limited)
    "order_rate": env.str("RISK_ORDER_RATE", default="20"),
    "order_burst": env.str("RISK_ORDER_BURST", default="40"),
    # the options counter's own book, per underlying (risk/exposure.py; risk_limit): its
    # |net delta| in the underlying and |net vega| in USDT per vol point. Past the soft value
    # the ask of a buy that adds to it widens (COUNTER_EXPOSURE_WIDENING); past the hard one
    # such a buy is refused. Sells to close are never widened nor refused.
    "counter_delta_soft": {"BTC": "50", "ETH": "750"},
    "counter_delta": {"BTC": "100", "ETH": "1500"},
    "counter_vega_soft": {"BTC": "20000", "ETH": "10000"},
    "counter_vega": {"BTC": "40000", "ETH": "20000"},
}
# k in the counter's widening past its soft exposure limit: half-spread x (1 + k x share of
# the soft-to-hard band used); 1.0 doubles the half-spread at the hard limit.
COUNTER_EXPOSURE_WIDENING = env.float("COUNTER_EXPOSURE_WIDENING", default=1.0)
# How long a process reuses the counter's exposure per underlying (orders/options/exposure.py):
# a hard limit may be overshot by the orders other processes fill in that time.
COUNTER_EXPOSURE_CACHE_SECONDS = env.float("COUNTER_EXPOSURE_CACHE_SECONDS", default=1.0)
# Defaults per KYC tier, before RISK_LIMITS: withdrawals in any 24 hours (limit_exceeded);
# tier 0 cannot withdraw at all.
RISK_TIER_LIMITS = {
    0: {"daily_withdrawal": "0"},
    1: {"daily_withdrawal": {"USDT": "100000", "BTC": "2", "ETH": "30"}},
}
# How long a process may use its cached limits, KYC tiers and trading states (a change is
# seen at once where it is made; order entry reads trading states under a lock, uncached).
RISK_CACHE_SECONDS = env.float("RISK_CACHE_SECONDS", default=1.0)
# The engine runner takes up to this many new orders and cancels per batch (one transaction).
ENGINE_BATCH_SIZE = env.int("ENGINE_BATCH_SIZE", default=2000)
ENGINE_POLL_SECONDS = env.float("ENGINE_POLL_SECONDS", default=0.2)
# POST /orders and DELETE /orders/{id} wait up to this long for the engine's verdict.
SPOT_ORDER_WAIT_SECONDS = env.float("SPOT_ORDER_WAIT_SECONDS", default=1.0)
# The market maker trades through the same order entry from this system user (RISK_EXEMPT_EMAILS).
MARKET_MAKER_EMAIL = env.str("MARKET_MAKER_EMAIL", default="market-maker@system.invalid")
# System traders held to no per-trader count, rate or position limit (bands and states apply).
RISK_EXEMPT_EMAILS = [MARKET_MAKER_EMAIL]
# /readyz reports the engine not ready when an order has waited longer than this for it.
ENGINE_READY_MAX_BACKLOG_SECONDS = env.float("ENGINE_READY_MAX_BACKLOG_SECONDS", default=10.0)

# --- Market maker (orders/spot/marketmaker.py) --------------------------------------------------------
# It keeps MARKET_MAKER_LEVELS limit orders a side on each symbol around the index: the best bid
# and ask MARKET_MAKER_SPREAD_BPS apart, each deeper level MARKET_MAKER_LEVEL_STEP_BPS further
# out, sized around MARKET_MAKER_LEVEL_QUANTITY (base units, per symbol; env form
# "BTC-USDT=0.15,ETH-USDT=2"). It re-quotes when the index has moved MARKET_MAKER_REQUOTE_BPS
# from where it quoted (keep it below half the spread so a quote never sits through the index)
# or when one of its quotes traded.
MARKET_MAKER_SYMBOLS = env.list("MARKET_MAKER_SYMBOLS", default=["BTC-USDT", "ETH-USDT"])
MARKET_MAKER_SPREAD_BPS = env.str("MARKET_MAKER_SPREAD_BPS", default="10")
MARKET_MAKER_LEVELS = env.int("MARKET_MAKER_LEVELS", default=5)
MARKET_MAKER_LEVEL_STEP_BPS = env.str("MARKET_MAKER_LEVEL_STEP_BPS", default="5")
MARKET_MAKER_LEVEL_QUANTITY = env.dict("MARKET_MAKER_LEVEL_QUANTITY", default={"BTC-USDT": "0.15", "ETH-USDT": "2"})
MARKET_MAKER_REQUOTE_BPS = env.str("MARKET_MAKER_REQUOTE_BPS", default="4")
MARKET_MAKER_INTERVAL_SECONDS = env.float("MARKET_MAKER_INTERVAL_SECONDS", default=0.5)

# --- Spot venues, smart order routing and RFQ (venues/, orders/spot/services/routing.py, rfq.py) ---
# Outside venues by name: simulated ones build a book around the index (offset, spread, step
# between levels, quantities) and charge ``fee`` of what a taker receives; ``"class": "ccxt"``
# with ``exchange``, ``api_key``, ``secret`` reaches a real exchange.
SPOT_VENUES = {
    "simx": {
        "offset_bps": "2",
        "spread_bps": "8",
        "step_bps": "4",
        "levels": 10,
        "level_quantity": "0.4",
        "fee": "0.001",
        "latency_ms": env.int("SPOT_VENUE_LATENCY_MS", default=5),
    },
    "simy": {
        "offset_bps": "-3",
        "spread_bps": "14",
        "step_bps": "6",
        "levels": 10,
        "level_quantity": "0.8",
        "fee": "0.0015",
        "latency_ms": env.int("SPOT_VENUE_LATENCY_MS", default=5),
    },
}
# A smart order waits up to this long for its child on our book before answering (the parent
# is finished later from its children if the engine is slower).
SMART_ORDER_WAIT_SECONDS = env.float("SMART_ORDER_WAIT_SECONDS", default=1.0)
# Levels a side read from each source for routing and the aggregated book.
SMART_ROUTE_DEPTH = env.int("SMART_ROUTE_DEPTH", default=20)
# RFQ: the market maker's price is the aggregated book's VWAP for the size, this far worse for the taker.
RFQ_SPREAD_BPS = env.str("RFQ_SPREAD_BPS", default="10")
RFQ_TTL_SECONDS = env.float("RFQ_TTL_SECONDS", default=5.0)
# Price alerts: how many active alerts one trader may keep, and how long an every_time alert
# waits after firing before it may fire again.
PRICE_ALERTS_MAX_ACTIVE = env.int("PRICE_ALERTS_MAX_ACTIVE", default=50)
PRICE_ALERTS_COOLDOWN_SECONDS = env.float("PRICE_ALERTS_COOLDOWN_SECONDS", default=60.0)

# The ops monitor (manage.py run_monitor; a thread in embedded mode): every check is probed
# every MONITOR_INTERVAL_SECONDS with MONITOR_PROBE_TIMEOUT_SECONDS to answer; a check turns
# failing after MONITOR_FAIL_AFTER failed probes in a row (an alert to staff) and ok after
# MONITOR_RECOVER_AFTER good ones (a recovery message). docs/operations.md, "Monitor".
MONITOR_INTERVAL_SECONDS = env.float("MONITOR_INTERVAL_SECONDS", default=5.0)
MONITOR_PROBE_TIMEOUT_SECONDS = env.float("MONITOR_PROBE_TIMEOUT_SECONDS", default=2.0)
MONITOR_FAIL_AFTER = env.int("MONITOR_FAIL_AFTER", default=2)
MONITOR_RECOVER_AFTER = env.int("MONITOR_RECOVER_AFTER", default=2)
MONITOR_LEASE_TTL_SECONDS = env.float("MONITOR_LEASE_TTL_SECONDS", default=10.0)
MONITOR_CHECKS = env.list("MONITOR_CHECKS", default=[])  # only these checks (names or prefixes); empty: all
MONITOR_WEB_URLS = env.list("MONITOR_WEB_URLS", default=[])  # each web process, e.g. http://10.0.0.5:8000
MONITOR_BEAT_MAX_AGE_SECONDS = env.float("MONITOR_BEAT_MAX_AGE_SECONDS", default=6.0)  # the heartbeat runs every 2 s
MONITOR_SETTLEMENT_STUCK_SECONDS = env.float("MONITOR_SETTLEMENT_STUCK_SECONDS", default=300.0)
MONITOR_SETTLEMENT_REVIEW_MAX = env.int("MONITOR_SETTLEMENT_REVIEW_MAX", default=20)
# Celery workers that must answer the ping (the Procfile runs two: worker and venue).
MONITOR_CELERY_MIN_WORKERS = env.int("MONITOR_CELERY_MIN_WORKERS", default=2)
OPS_ALERT_EMAILS = env.list("OPS_ALERT_EMAILS", default=[])
OPS_ALERT_URLS = env.list("OPS_ALERT_URLS", default=[])  # apprise URLs: slack://..., json://host/path, ntfy://...
# Beat stamps its own heartbeat every 2 s: the task runs in beat's process (trading.beat.Scheduler),
# so the beat check answers for beat alone, not for a free worker.
CELERY_BEAT_SCHEDULE["ops-heartbeat"] = {"task": "ops.heartbeat", "schedule": 2.0}
CELERY_BEAT_SCHEDULER = "trading.beat:Scheduler"
BEAT_IN_PROCESS_TASKS = ("ops.heartbeat",)
# How long a heartbeat's write may wait (a lock held by a stuck transaction) before it gives up
# and leaves beat's loop to go on: the stamp goes stale and the monitor alerts.
HEARTBEAT_TIMEOUT_MS = env.int("HEARTBEAT_TIMEOUT_MS", default=1000)
# The analytics' daily aggregates (ops.DailyAggregate): today so far and yesterday, every
# OPS_AGGREGATE_EVERY_MINUTES; `manage.py aggregate_daily` recomputes any other day.
OPS_AGGREGATE_EVERY_MINUTES = env.int("OPS_AGGREGATE_EVERY_MINUTES", default=10)
CELERY_BEAT_SCHEDULE["ops-aggregate-daily"] = {
    "task": "ops.aggregate_daily",
    "schedule": crontab(minute=f"*/{OPS_AGGREGATE_EVERY_MINUTES}"),
    "options": {"expires": 60.0 * OPS_AGGREGATE_EVERY_MINUTES},
}
