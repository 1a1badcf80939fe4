#!/bin/sh
# Write .env for `docker compose` from .env.example, with fresh secrets: the Fernet key, the JWT secret and
# the API secret key (everything else as the example has it: the demo). Never overwrites an existing file.
#
#     docker/make-env.sh [OUTPUT]        # OUTPUT defaults to .env at the repository root
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/.env"}
if [ -e "$out" ]; then
    echo "$out exists: edit it, or remove it to start afresh" >&2
    exit 1
fi
if command -v python3 >/dev/null 2>&1; then
    fernet=$(python3 -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')
    jwt=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    api=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
else
    fernet=$(openssl rand -base64 32 | tr '+/' '-_')
    jwt=$(openssl rand -hex 32)
    api=$(openssl rand -hex 32)
fi
umask 077
sed -e "s|^AIRFLOW__CORE__FERNET_KEY=.*|AIRFLOW__CORE__FERNET_KEY=$fernet|" \
    -e "s|^AIRFLOW__API_AUTH__JWT_SECRET=.*|AIRFLOW__API_AUTH__JWT_SECRET=$jwt|" \
    -e "s|^AIRFLOW__API__SECRET_KEY=.*|AIRFLOW__API__SECRET_KEY=$api|" \
    "$root/.env.example" > "$out"
echo "Wrote $out (readable by you only) with a new Fernet key, JWT secret and API secret key."
