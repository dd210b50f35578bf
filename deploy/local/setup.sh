#!/usr/bin/env bash
# Idempotent local provisioning for ETP (`make setup`). Safe to rerun; on a
# ready machine it only checks things and takes a few seconds.
#
#   PostgreSQL >= 15 (+ TimescaleDB), Redis >= 7, database + role, .venv with
#   the server (and SDK) installed in editable mode, the web UI build and,
#   optionally, Chromium for the e2e tests.
#
# Env overrides (defaults in brackets):
#   ETP_LOCAL_DB_NAME [etp]      ETP_LOCAL_DB_USER [etp]
#   ETP_LOCAL_DB_PASSWORD [etp]  (local development only)
#   PGPORT [5432]                ETP_REDIS_PORT [6379]
#   ETP_PYTHON                   interpreter for .venv [python3.11, else python3 >= 3.11]
#   ETP_SETUP_BROWSER=1          also install Debian's chromium for e2e tests
#   ETP_SKIP_WEB=1               skip the npm install/build of web/
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

PGHOST_=127.0.0.1
PGPORT_=${PGPORT:-5432}
REDIS_PORT=${ETP_REDIS_PORT:-6379}
DB_NAME=${ETP_LOCAL_DB_NAME:-etp}
DB_USER=${ETP_LOCAL_DB_USER:-etp}
DB_PASSWORD=${ETP_LOCAL_DB_PASSWORD:-etp}

step() { echo "==> $*"; }
log() { echo "    $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root for: $*"
    fi
}

export ETP_APT_UPDATED=${ETP_APT_UPDATED:-0}
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install() {
    local missing=() p
    for p in "$@"; do is_installed "$p" || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $ETP_APT_UPDATED != 1 ]]; then
        log "apt-get update"
        as_root apt-get update -q
        ETP_APT_UPDATED=1 # exported: timescaledb.sh will not update again
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

t0=$SECONDS

# ------------------------------------------------------------- PostgreSQL --
step "PostgreSQL >= 15 on $PGHOST_:$PGPORT_"
pg_ready() { pg_isready -q -h "$PGHOST_" -p "$PGPORT_" 2>/dev/null; }
if ! command -v pg_isready >/dev/null 2>&1 || ! command -v pg_lsclusters >/dev/null 2>&1; then
    apt_install postgresql
fi
if pg_ready; then
    log "running"
else
    # Start the cluster on our port (create one if the packages have none).
    cluster=$(pg_lsclusters -h | awk -v p="$PGPORT_" '$3 == p {print $1, $2; exit}')
    if [[ -z $cluster ]]; then
        ver=$(find /usr/lib/postgresql -maxdepth 1 -mindepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
        [[ -n $ver ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
        log "creating cluster $ver/main on port $PGPORT_"
        as_root pg_createcluster --port "$PGPORT_" "$ver" main
        cluster="$ver main"
    fi
    read -r ver name <<<"$cluster"
    log "starting cluster $ver/$name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
    for _ in $(seq 1 60); do pg_ready && break; sleep 1; done
    pg_ready || die "PostgreSQL did not become ready on $PGHOST_:$PGPORT_"
    log "running"
fi

# Superuser access: TCP (trust in dev/CI) or the local socket with peer auth.
if psql -h "$PGHOST_" -p "$PGPORT_" -U postgres -d postgres -XAtqw -c 'select 1' >/dev/null 2>&1; then
    psql_su() { psql -h "$PGHOST_" -p "$PGPORT_" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"; }
elif [[ $EUID -eq 0 ]] && runuser -u postgres -- psql -p "$PGPORT_" -d postgres -XAtq -c 'select 1' >/dev/null 2>&1; then
    psql_su() { runuser -u postgres -- psql -p "$PGPORT_" -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"; }
else
    die "cannot connect to PostgreSQL as the postgres superuser (over $PGHOST_ or the local socket)"
fi
server_version=$(psql_su -c 'show server_version_num')
((server_version >= 150000)) || die "PostgreSQL >= 15 required, found $(psql_su -c 'show server_version')"
log "version $(psql_su -c 'show server_version')"

# ------------------------------------------------------------------ Redis --
step "Redis >= 7 on 127.0.0.1:$REDIS_PORT"
redis_ok() { command -v redis-cli >/dev/null 2>&1 && [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
if redis_ok; then
    log "running"
else
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        apt_install redis-server
    fi
    # The package may have started its own instance already.
    if ! redis_ok; then
        as_root mkdir -p /var/lib/redis /var/log/redis
        log "starting redis-server"
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
            --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
        for _ in $(seq 1 30); do redis_ok && break; sleep 0.5; done
        redis_ok || die "redis did not answer PING (see /var/log/redis/ci.log)"
    fi
    log "running"
fi
redis_version=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '$1 == "redis_version" {print $2}')
((${redis_version%%.*} >= 7)) || die "Redis >= 7 required, found $redis_version"
log "version $redis_version"

# ------------------------------------------------------------ TimescaleDB --
step "TimescaleDB"
PGPORT=$PGPORT_ bash "$ROOT/deploy/local/timescaledb.sh"

# ------------------------------------------------------- connection budget --
# Each active sensor writer (a Ray actor) holds one connection while it streams; the default
# of 100 is too small for a few dozen sensors plus the api pools and the test databases.
MIN_CONNECTIONS=${ETP_LOCAL_MAX_CONNECTIONS:-300}
step "PostgreSQL max_connections >= $MIN_CONNECTIONS"
current_max=$(psql_su -c 'show max_connections')
if ((current_max < MIN_CONNECTIONS)); then
    log "raising max_connections from $current_max (ALTER SYSTEM) and restarting"
    psql_su -c "alter system set max_connections = $MIN_CONNECTIONS" >/dev/null
    pg_major=$(($(psql_su -c 'show server_version_num') / 10000))
    as_root pg_ctlcluster --skip-systemctl-redirect "$pg_major" main restart
    for _ in $(seq 1 60); do pg_ready && break; sleep 1; done
    pg_ready || die "PostgreSQL did not come back after the restart"
else
    log "max_connections = $current_max"
fi

# -------------------------------------------------------- database + role --
step "database '$DB_NAME' and role '$DB_USER'"
# psql variables (:'x') quote names safely; \gexec runs the generated DDL.
role_state=$(psql_su -v user="$DB_USER" <<'SQL'
SELECT CASE WHEN rolsuper AND rolcanlogin THEN 'ok' ELSE 'weak' END FROM pg_roles WHERE rolname = :'user'
SQL
)
if [[ -z $role_state ]]; then
    log "creating role $DB_USER (LOGIN SUPERUSER; local development only)"
    psql_su -v user="$DB_USER" -v pass="$DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER PASSWORD %L', :'user', :'pass') \gexec
SQL
elif [[ $role_state != ok ]]; then
    log "WARNING: role '$DB_USER' exists but is not a LOGIN SUPERUSER (the tests need that)"
fi
if [[ -z $(psql_su -v db="$DB_NAME" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'") ]]; then
    log "creating database $DB_NAME owned by $DB_USER"
    psql_su -v user="$DB_USER" -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') \gexec
SQL
fi
log "ok (postgresql://$DB_USER:***@$PGHOST_:$PGPORT_/$DB_NAME)"

# ----------------------------------------------------------------- Python --
step "Python virtualenv (.venv)"
pick_python() {
    local c
    if [[ -n ${ETP_PYTHON:-} ]]; then echo "$ETP_PYTHON"; return; fi
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$c"; return
        fi
    done
    return 1
}
if [[ ! -f pyproject.toml ]]; then
    log "no pyproject.toml yet; skipping"
else
    if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
        py=$(pick_python) || die "Python >= 3.11 not found (set ETP_PYTHON)"
        log "creating .venv with $py ($("$py" --version 2>&1))"
        rm -rf .venv
        "$py" -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
    fi
    stamp_files=(pyproject.toml)
    [[ -f sdk/pyproject.toml ]] && stamp_files+=(sdk/pyproject.toml)
    want=$(cat "${stamp_files[@]}" | sha256sum | cut -d' ' -f1)
    have=$(cat .venv/.etp-installed 2>/dev/null || true)
    if [[ $want == "$have" ]]; then
        log "dependencies up to date ($(.venv/bin/python --version), ${stamp_files[*]} unchanged)"
    else
        log "pip install -e '.[dev]' (ray is large; the first run takes a few minutes)"
        .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
        if [[ -f sdk/pyproject.toml ]]; then
            log "pip install -e ./sdk"
            .venv/bin/python -m pip install -q --disable-pip-version-check -e ./sdk
        fi
        echo "$want" >.venv/.etp-installed
    fi
fi

# -------------------------------------------------------------------- Web --
step "web UI (web/)"
if [[ ${ETP_SKIP_WEB:-0} == 1 ]]; then
    log "ETP_SKIP_WEB=1; skipping"
elif [[ ! -f web/package.json ]]; then
    log "no web/package.json yet; skipping"
else
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js >= 20"
    if [[ -f web/package-lock.json ]]; then
        # npm writes node_modules/.package-lock.json (none when there are no
        # dependencies, hence our own stamp as well).
        if [[ web/node_modules/.package-lock.json -nt web/package-lock.json ||
            web/node_modules/.etp-npm-ci -nt web/package-lock.json ]]; then
            log "node_modules up to date"
        else
            log "npm ci"
            (cd web && npm ci --no-audit --no-fund --loglevel=error)
            mkdir -p web/node_modules && touch web/node_modules/.etp-npm-ci
        fi
    elif [[ ! -d web/node_modules ]]; then
        log "npm install (no package-lock.json)"
        (cd web && npm install --no-audit --no-fund --loglevel=error)
    fi
    # Rebuild when anything outside node_modules/dist is newer than dist.
    newer=
    if [[ -d web/dist ]]; then
        newer=$(find web \( -path web/node_modules -o -path web/dist -o -path web/.vite \
            -o -path web/coverage -o -path web/test-results -o -path web/playwright-report \) -prune \
            -o -type f -newer web/dist -print -quit)
    fi
    if [[ -d web/dist && -z $newer ]]; then
        log "web/dist up to date"
    else
        log "npm run build${newer:+ ($newer changed)}"
        (cd web && npm run build --silent)
        touch web/dist
    fi
fi

# ---------------------------------------------------------------- Browser --
if [[ ${ETP_SETUP_BROWSER:-0} == 1 ]]; then
    step "Chromium for e2e tests"
    if [[ -x /usr/bin/chromium ]]; then
        log "present ($(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
    else
        apt_install chromium
    fi
fi

step "done in $((SECONDS - t0))s"
