# syntax=docker/dockerfile:1
# The regledger image: the `regledger` CLI, installed from this repository's own files.
#
#   docker build -t regledger .
#   docker run --rm -e REGLEDGER_DATABASE_URL=postgresql://... regledger verify --json
#
# The wheel carries migrations/ as ledger/_migrations (hatch force-include in
# pyproject.toml), so `regledger db migrate` needs no source checkout at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

# Only what the wheel is built from (see [tool.hatch.build.targets.wheel]).
COPY pyproject.toml README.md ./
COPY ledger/ ledger/
COPY domain/ domain/
COPY projections/ projections/
COPY streams/ streams/
COPY reports/ reports/
COPY console/ console/
COPY migrations/ migrations/

RUN pip install --no-cache-dir . \
    && rm -rf /src \
    && groupadd --system --gid 10001 regledger \
    && useradd --system --uid 10001 --gid regledger --home-dir /var/lib/regledger \
        --create-home --shell /usr/sbin/nologin regledger

# A non-root user; its home is the working directory, so the embedded default
# (sqlite:///./regledger.db) would land somewhere writable. Deployments set
# REGLEDGER_DATABASE_URL to PostgreSQL (docker-compose.yml).
USER regledger:regledger
WORKDIR /var/lib/regledger

ENTRYPOINT ["regledger"]
CMD ["--help"]
