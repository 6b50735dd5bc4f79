#!/usr/bin/env bash
# The one-shot `kafka-setup` job of docker-compose.yml (image apache/kafka, this folder mounted at
# /lotse). It makes the compose broker's security match the repository:
#   1. a SCRAM-SHA-512 credential for every principal in secrets/ (admin, services, partners; generated
#      on this machine by `uv run lotse deploy compose-secrets`, never committed);
#   2. the ACLs in generated/kafka-acls.txt (`uv run lotse deploy generate` writes them from the
#      contract catalogue and tenants.yaml), one `kafka-acls.sh --add` call per line;
#   3. a login as lotse-admin over SASL/SCRAM on the host listener, with a client properties file,
#      which proves that the credentials work before any service starts.
# Steps 1 and 2 use the broker's loopback-only INTERNAL listener (the job shares the broker's network
# namespace): the first SCRAM credential cannot be created over SASL, because none exists yet and the
# image formats its storage itself, without `kafka-storage format --add-scram`. Every step is
# idempotent, so the job may run again (`docker compose run --rm kafka-setup`) after a change.
set -euo pipefail

SETUP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
INTERNAL_LISTENER=${INTERNAL_LISTENER:-127.0.0.1:19092}
HOST_LISTENER=${HOST_LISTENER:-localhost:29092}
CREDENTIALS_DIR="$SETUP_DIR/secrets"
ACLS_FILE="$SETUP_DIR/generated/kafka-acls.txt"
ADMIN=lotse-admin

fail() {
  echo "kafka-setup: $*" >&2
  exit 1
}

# The value of KEY=... in an env file, read without sourcing the file.
value_of() {
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

shopt -s nullglob
credential_files=("$CREDENTIALS_DIR"/lotse-*.env)
((${#credential_files[@]})) || fail "no credentials in $CREDENTIALS_DIR (run \`uv run lotse deploy compose-secrets\`)"
[[ -f $ACLS_FILE ]] || fail "$ACLS_FILE not found (run \`uv run lotse deploy generate\`)"

for file in "${credential_files[@]}"; do
  user=$(value_of "$file" LOTSE_KAFKA_USERNAME)
  password=$(value_of "$file" LOTSE_KAFKA_PASSWORD)
  [[ -n $user && -n $password ]] || fail "$file lacks LOTSE_KAFKA_USERNAME or LOTSE_KAFKA_PASSWORD"
  # Letters, digits and '-' only: the password is written into `[password=...]` and a JAAS string.
  [[ $password =~ ^[A-Za-z0-9-]+$ ]] || fail "$file: the password may hold only letters, digits and '-'"
  "$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$INTERNAL_LISTENER" --alter --entity-type users \
    --entity-name "$user" --add-config "SCRAM-SHA-512=[password=$password]" >/dev/null
  echo "kafka-setup: SCRAM-SHA-512 credential of $user"
done

while IFS= read -r line; do
  [[ -z $line || $line == \#* ]] && continue
  read -r -a arguments <<<"$line"
  "$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$INTERNAL_LISTENER" --add "${arguments[@]}" >/dev/null
  echo "kafka-setup: ACL $line"
done <"$ACLS_FILE"

admin_password=$(value_of "$CREDENTIALS_DIR/$ADMIN.env" LOTSE_KAFKA_PASSWORD)
[[ -n $admin_password ]] || fail "$CREDENTIALS_DIR/$ADMIN.env lacks LOTSE_KAFKA_PASSWORD"
properties=$(mktemp)
trap 'rm -f "$properties"' EXIT
cat >"$properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN" password="$admin_password";
EOF
# A new credential reaches the broker's SCRAM cache through the metadata log: a few tries.
for attempt in 1 2 3 4 5; do
  if "$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$HOST_LISTENER" --command-config "$properties" --list >/dev/null; then
    echo "kafka-setup: $ADMIN logged in over SASL/SCRAM; done"
    exit 0
  fi
  echo "kafka-setup: login as $ADMIN failed (attempt $attempt)" >&2
  sleep 2
done
fail "$ADMIN cannot log in over SASL/SCRAM at $HOST_LISTENER"
