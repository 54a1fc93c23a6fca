"""Settings for Upsell CRM, read from the environment (twelve-factor).

With no environment at all the app runs embedded: SQLite, local-memory cache, eager Celery, console mail.
Production sets DATABASE_URL (PostgreSQL), CACHE_URL and CELERY_BROKER_URL (Redis) and DJANGO_DEBUG=off.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The fallback key only exists so `make run` works out of the box; production must set its own, and
# `check --deploy` flags this one as insecure.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-dev-only-upsell-crm-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "axes",
    "ninja",
    "accounts",
    "playbooks",
    "opportunities",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Logs 401/403/404 answers with who asked: it reads request.user (set by AuthenticationMiddleware below)
    # once the response is back, and sits outside CommonMiddleware so a 404 that becomes an APPEND_SLASH
    # redirect is not counted as a refusal.
    "upsell_crm.middleware.RefusalLogMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "upsell_crm.urls"
WSGI_APPLICATION = "upsell_crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# Django's form renderer with its field, label, error and input templates drawn in Python, to the same HTML.
FORM_RENDERER = "upsell_crm.form_renderer.FormRenderer"

# --- Database ------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections with health checks: opening a PostgreSQL connection per request costs more
    # than most of our pages do. CONN_MAX_AGE=None keeps them for the life of the worker.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3))
    # Server-side binding lets psycopg prepare a statement once it has run 5 times on a connection, so
    # PostgreSQL parses and plans it once per worker instead of once per request: planning the account page's
    # joins cost more than running them. Behind PgBouncer in transaction mode (before 1.21, or without
    # max_prepared_statements), set DATABASE_PREPARED_STATEMENTS=off.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server, eager tasks and a shell share the file without
    # "database is locked" errors.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ---------------------------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://upsell-crm")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis outage slows pages down to the database's pace instead of failing them (upsell_crm/cache.py),
    # and an unreachable Redis costs a second per call, not redis-py's default five.
    CACHES["default"]["BACKEND"] = "upsell_crm.cache.DegradingRedisCache"
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("socket_connect_timeout", 1)
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", 1)

# --- Auth ----------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Behind the TLS proxy every request comes from the proxy's address: count failures per client address as the
# proxies in front report it in X-Forwarded-For (upsell_crm/client_ip.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "upsell_crm.client_ip.client_ip"
# A locked-out sign-in gets a page in the app's layout (status 429), not axes' bare text.
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"

# --- I18N ----------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js is served from the plotly package itself rather than a copy in the repository.
    "upsell_crm.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ------------------------------------------------------------------------------------------
# plotly.js injects <style> elements at run time, so style-src allows inline styles (with no nonce: a
# nonce in that directive would make browsers ignore 'unsafe-inline'). Scripts stay strict.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie; the token travels in hx-headers on <body>.
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Mail (Django 6.1 MAILERS) -------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Upsell CRM <upsell@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The app's public address: links in the emails it sends to customers (their unsubscribe link) start with it.
APP_URL = env.str("APP_URL", default="http://localhost:8000")
if env.str("SMTP_HOST", default=""):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env.str("SMTP_HOST"),
                "port": env.int("SMTP_PORT", default=587),
                "username": env.str("SMTP_USERNAME", default=""),
                "password": env.str("SMTP_PASSWORD", default=""),
                "use_tls": env.bool("SMTP_USE_TLS", default=True),
                "timeout": env.int("SMTP_TIMEOUT", default=10),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}

# --- Celery --------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
# Without a real broker (the embedded default) tasks run inline, so `make run` needs no Redis.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# A task is acknowledged only when it finished, and re-queued if its worker dies mid-way: every task is
# written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
# Longer than the longest task, or Redis hands an unacknowledged long task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 10 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "pipeline-hourly": {
        "task": "opportunities.run_pipeline",
        "schedule": crontab(minute=15),
        "options": {"expires": 50 * 60, "queue": "pipeline"},
    },
    # An import whose enqueueing failed (broker down) or whose worker died is picked up again.
    "resume-imports": {
        "task": "accounts.resume_imports",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "purge-idempotency-keys-daily": {
        "task": "accounts.purge_idempotency_keys",
        "schedule": crontab(hour=3, minute=40),
        "options": {"expires": 6 * 60 * 60},
    },
    # Play sequences: the steps due by now, each delivered once (playbooks.sequence_services).
    "deliver-due-steps": {
        "task": "playbooks.deliver_due_steps",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    # Notifications: tasks due and snoozes back as the working day starts, experiment verdicts for admins,
    # and the daily digest of everything at its end (each once per day: dedupe keys and a claimed day).
    "notify-tasks-due-daily": {
        "task": "accounts.notify_tasks_due",
        "schedule": crontab(hour=7, minute=0),
        "options": {"expires": 6 * 60 * 60},
    },
    "notify-snoozes-returned-daily": {
        "task": "opportunities.notify_snoozes_returned",
        "schedule": crontab(hour=7, minute=5),
        "options": {"expires": 6 * 60 * 60},
    },
    "notify-experiment-results-daily": {
        "task": "opportunities.notify_experiment_results",
        "schedule": crontab(hour=7, minute=10),
        "options": {"expires": 6 * 60 * 60},
    },
    # Email-link surveys to the accounts their rule flags, once each (playbooks.survey_delivery).
    "send-survey-emails-daily": {
        "task": "playbooks.send_survey_emails",
        "schedule": crontab(hour=9, minute=30),
        "options": {"expires": 6 * 60 * 60},
    },
    "send-daily-digests": {
        "task": "accounts.send_daily_digests",
        "schedule": crontab(hour=17, minute=30),
        "options": {"expires": 6 * 60 * 60},
    },
}

# --- Logging -------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Product settings ----------------------------------------------------------------------------------
# Webhook secrets: Stripe's endpoint signing secret (whsec_...) and the shared secret set in Segment's
# Webhooks destination. Empty turns the Stripe endpoint off and Segment's signature and Basic auth off.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
SEGMENT_SHARED_SECRET = env.str("SEGMENT_SHARED_SECRET", default="")
DEMO_PASSWORD = "demo"  # noqa: S105 - shown on the login page only while DEBUG is on  # nosec B105
