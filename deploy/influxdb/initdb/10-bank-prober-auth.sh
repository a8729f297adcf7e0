#!/bin/bash
# Run once by the influxdb:2 image after its first setup (docker-entrypoint-initdb.d),
# with the influx CLI already authenticated as the operator.
#
# Least privilege for the clients of the bucket: the prober may only write to it,
# Grafana may only read it, the PSD2 daily job reads and writes. Both get a v1 authorization (user name + password) because,
# unlike an API token, its secret can be chosen in advance and handed to the other
# containers through their env files; the v1 compatibility API (/write, /query) serves
# both. The DBRP mapping names the bucket as InfluxQL database "prober", retention
# policy "autogen", for Grafana's InfluxQL queries and the prober's /write.
set -euo pipefail

: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?set by the image after setup}"
: "${DOCKER_INFLUXDB_INIT_ORG_ID:?set by the image after setup}"
: "${BANK_PROBER_INFLUX_WRITE_PASSWORD:?missing from deploy/secrets/influxdb.env}"
: "${BANK_PROBER_INFLUX_READ_PASSWORD:?missing from deploy/secrets/influxdb.env}"
: "${BANK_PROBER_INFLUX_REPORT_PASSWORD:?missing from deploy/secrets/influxdb.env}"

influx v1 dbrp create \
    --org-id "$DOCKER_INFLUXDB_INIT_ORG_ID" \
    --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --db prober --rp autogen --default

influx v1 auth create \
    --org-id "$DOCKER_INFLUXDB_INIT_ORG_ID" \
    --username bank-prober \
    --password "$BANK_PROBER_INFLUX_WRITE_PASSWORD" \
    --write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "bank-prober: write results"

influx v1 auth create \
    --org-id "$DOCKER_INFLUXDB_INIT_ORG_ID" \
    --username grafana \
    --password "$BANK_PROBER_INFLUX_READ_PASSWORD" \
    --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "Grafana: read dashboards"

# `prober report --write` (the psd2-daily service) reads the results and writes the
# psd2_daily points back: read and write, nothing else.
influx v1 auth create \
    --org-id "$DOCKER_INFLUXDB_INIT_ORG_ID" \
    --username bank-prober-report \
    --password "$BANK_PROBER_INFLUX_REPORT_PASSWORD" \
    --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "bank-prober: PSD2 daily figures"
