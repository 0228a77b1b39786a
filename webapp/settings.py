"""Distillery settings: everything comes from the environment, with an embedded default.

With no environment at all this runs on a SQLite file and Celery's filesystem transport
under var/, so `make run` needs no server. DATABASE_URL and CELERY_BROKER_URL switch to
Postgres and Redis. Helpers in webapp/env.py refuse malformed values.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from webapp.env import database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DISTILLERY_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# DEBUG is off unless asked for: a process started without the Makefile is treated as a
# deployment and needs DJANGO_SECRET_KEY. `make run` and `make test` set DJANGO_DEBUG=1 (a
# developer's install: a key generated under var/, static files straight from the finders).
DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    """Use DJANGO_SECRET_KEY; in DEBUG only, else one random key kept under var/ for this install."""
    key = env_str("DJANGO_SECRET_KEY", "").strip()
    if key:
        if not DEBUG and (len(key) < 32 or len(set(key)) < 5 or key in KNOWN_SECRET_KEYS):
            raise ImproperlyConfigured(
                "DJANGO_SECRET_KEY is too short or a published example: use 50 or more random characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`.")
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. For a developer's install use `make run` / `make test` (or set DJANGO_DEBUG=1). "
            "Outside DEBUG every process of the deployment "
            "needs the same secret: generate one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'` "
            "and pass it in the environment (docker compose reads it from your shell or an .env file).")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Values once shipped as defaults: whoever knows them can forge sessions.
KNOWN_SECRET_KEYS = {"change-me"}
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS: behind a proxy that terminates TLS and sets X-Forwarded-Proto --------------
BEHIND_TLS_PROXY = env_bool("DISTILLERY_BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DISTILLERY_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True  # the header only allows preloading; a listing needs a submission
# Only our own scripts run (page data travels in json_script blocks, which are not code); inline
# style attributes stay allowed for progress bars and Plotly's SVG. webapp/csp.py sends it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "webapp.accounts",
    "webapp.registry",
    "webapp.experiments",
    "webapp.metrics",
    "webapp.api",
    "ninja",  # its templates and static files: the Swagger UI page at /api/docs, no CDN
    "webapp.gpuqueue",
    "webapp.notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: it turns a lockout flagged during authentication into our 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
_sqlite_default = f"sqlite:///{VAR_DIR / 'distillery.sqlite3'}"
DATABASES = {"default": database_from_url(env_str("DATABASE_URL", _sqlite_default))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web and worker processes share the file: wait for locks instead of failing, and
    # keep the test database on disk so a worker subprocess can open it too.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-distillery.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# --- Sign-in throttling (django-axes; webapp/accounts/throttle.py) ----------------------
# Failures count per username and, separately, per client address: either reaching the limit
# refuses every password (the right one too) until the cool-off has passed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("DISTILLERY_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("DISTILLERY_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "webapp.accounts.throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "webapp.accounts.throttle.client_ip"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "experiments:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: our CSS/JS plus plotly.min.js from the plotly package (no CDN) ------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "webapp.staticfinders.PlotlyFinder",
]
if DEBUG:
    WHITENOISE_USE_FINDERS = True  # serve straight from the finders: no collectstatic step
else:
    # Hashed, compressed copies made by `collectstatic` (the Dockerfile runs it), cached forever.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Uploads --------------------------------------------------------------------------
# Files are capped per view while they stream (webapp/registry/upload_limits.py); these bound
# the rest: non-file fields held in memory, files held in memory before spilling to disk, files per body.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# --- Distillery -----------------------------------------------------------------------
ARTIFACT_ROOT = Path(env_str("DISTILLERY_ARTIFACT_ROOT", str(VAR_DIR / "artifacts"))).resolve()
# Teacher checkpoints may only be registered from inside these directories.
CHECKPOINT_ROOTS = [
    Path(p).resolve() for p in env_list("DISTILLERY_CHECKPOINT_ROOTS", [str(VAR_DIR / "teachers")])
]
DATASET_ROOT = ARTIFACT_ROOT / "datasets"
# Teachers registered by Hugging Face id are downloaded here by the workers (one cache for all of
# them: put it on the shared mount with several hosts). HF_HUB_OFFLINE=1 makes them read it only.
HF_CACHE = Path(env_str("DISTILLERY_HF_CACHE", str(VAR_DIR / "hf-cache"))).resolve()
# Uploaded checkpoint archives (.zip/.tar.gz): the most the body may be, and the most it may unpack to.
MAX_CHECKPOINT_UPLOAD_MB = env_int("DISTILLERY_MAX_CHECKPOINT_UPLOAD_MB", 2048, minimum=1)
MAX_CHECKPOINT_UNPACKED_MB = env_int("DISTILLERY_MAX_CHECKPOINT_UNPACKED_MB", 4 * MAX_CHECKPOINT_UPLOAD_MB, minimum=1)
# Each dataset split file, refused while it streams (every split is read into memory to be checked).
MAX_DATASET_UPLOAD_MB = env_int("DISTILLERY_MAX_DATASET_UPLOAD_MB", 200, minimum=1)
# The most weights a language-model "Try it" loads into the web process (teacher and student each).
TRY_IT_MAX_MODEL_MB = env_int("DISTILLERY_TRY_IT_MAX_MODEL_MB", 1024, minimum=1)
LEASE_SECONDS = env_int("DISTILLERY_LEASE_SECONDS", 60, minimum=5)
# (Celery setting) Jobs a worker's child process runs before it is replaced: 1 hands GPU
# memory back after every run (workers/pool.py replaces the child within half a second).
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("DISTILLERY_JOBS_PER_CHILD", 1, minimum=1)

# --- Celery (read by workers/celery.py with namespace="CELERY") -----------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "memory://")):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL must start with redis://, rediss:// or filesystem:// (got {CELERY_BROKER_URL!r})."
    )
CELERY_TASK_DEFAULT_QUEUE = env_str("DISTILLERY_QUEUE_PREFIX", "distillery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False  # a message is only a wake-up; the DB lease owns the job
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Housekeeping (requeue lost runs, kill hung cancels, wake pools) has its own queue and a small
# consumer (workers/launch.py housekeeping_argv), so it runs while every concurrency-1 run worker
# is busy. The name lies outside the "<prefix>.<pool>" space, so no pool can collide with it.
HOUSEKEEPING_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-housekeeping"
HOUSEKEEPING_SECONDS = 15.0
CELERY_TASK_ROUTES = {"workers.tasks.housekeeping": {"queue": HOUSEKEEPING_QUEUE},
                      "workers.notify_tasks.deliver": {"queue": HOUSEKEEPING_QUEUE}}

# --- notifications (webapp/notifications): Django's mail framework and signed webhooks ---------------
EMAIL_BACKEND = env_str("DISTILLERY_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("DISTILLERY_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DISTILLERY_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("DISTILLERY_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("DISTILLERY_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_str("DISTILLERY_EMAIL_TLS", "0") == "1"
DEFAULT_FROM_EMAIL = env_str("DISTILLERY_EMAIL_FROM", "distillery@localhost")
# The address links in notifications start with (e.g. https://distillery.example.org); "" gives bare paths.
DISTILLERY_PUBLIC_URL = env_str("DISTILLERY_PUBLIC_URL", "")
# Webhooks to private/loopback addresses (a closed network's receivers): off, so a user cannot aim the server inside.
WEBHOOK_ALLOW_PRIVATE = env_bool("DISTILLERY_WEBHOOK_ALLOW_PRIVATE", False)
NOTIFY_RETRY_BASE_SECONDS = env_int("DISTILLERY_NOTIFY_RETRY_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # A copy older than one interval is dropped unrun: the next one is already on its way, so
    # messages sent while the consumer was down do not pile up into a burst.
    "recover-and-wake": {"task": "workers.tasks.housekeeping", "schedule": HOUSEKEEPING_SECONDS,
                         "options": {"expires": HOUSEKEEPING_SECONDS}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DISTILLERY_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
