# syntax=docker/dockerfile:1
#
# One image for every Atrium service and for `atrium-infra migrate`; the
# command picks what a container runs (see docker-compose.yml):
#
#   atrium-infra migrate                 schemas, logins, migrations, topics
#   python -m services.identity.app      identity  (ATRIUM_IDENTITY_URL)
#   python -m services.billing.app       billing   (ATRIUM_BILLING_URL)
#   python -m services.assets.app        assets    (ATRIUM_ASSETS_URL)
#   python -m services.apikeys.app       apikeys   (ATRIUM_APIKEYS_URL)
#   python -m services.gateway.app       gateway   (ATRIUM_GATEWAY_URL, the default)
#
# Each service binds to the host and port of its own ATRIUM_<SERVICE>_URL, so a
# container must set it to http://0.0.0.0:<port>. Set ATRIUM_DATABASE_URL and
# ATRIUM_KAFKA_BOOTSTRAP_SERVERS too: with both set, `atrium-infra` never starts
# the embedded PostgreSQL or Kafka. No secret has a default: a service does not
# start without ATRIUM_INTERNAL_SECRET (the gateway also ATRIUM_JWT_SECRET, the
# gateway and apikeys ATRIUM_APIKEY_PEPPER) and its
# own ATRIUM_<SERVICE>_KAFKA_PASSWORD (README, "Secrets").
#
# There is no HEALTHCHECK here: the port differs per service and the migrate
# container is a one-shot job. docker-compose.yml declares one per service.

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 atrium \
 && useradd --system --uid 10001 --gid atrium --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin atrium

# A regular (non-editable) install: the code, the Alembic migrations
# (services/*/migrations/**, with script.py.mako via package-data) and the
# `atrium-infra` script all land in site-packages. README.m[d] is a wildcard on
# purpose: pyproject.toml names README.md as the readme, but a missing one must
# not fail the build (setuptools only warns).
WORKDIR /tmp/atrium-src
COPY pyproject.toml README.m[d] ./
COPY contracts/ contracts/
COPY shared/ shared/
COPY services/ services/
COPY infra/ infra/
RUN pip install . \
 && cd / \
 && rm -rf /tmp/atrium-src

# An empty working folder, so `python -m services...` imports the installed
# package and never a stray source tree.
WORKDIR /app
RUN chown atrium:atrium /app
USER atrium:atrium

EXPOSE 8000
CMD ["python", "-m", "services.gateway.app"]
