#!/usr/bin/env bash
# Make the TimescaleDB extension available to the local PostgreSQL cluster.
#
# Idempotent: if `timescaledb` is already in pg_available_extensions and in
# shared_preload_libraries it prints "timescaledb: already available" and exits.
# Otherwise it builds the Apache-2-only TimescaleDB from the Debian source
# package of the newer release (trixie; bookworm ships no TimescaleDB package),
# installs it for the running cluster's PostgreSQL major, adds it to
# shared_preload_libraries (keeping any libraries already listed), turns
# telemetry off and restarts the cluster.
#
# Env overrides:
#   PGHOST / PGPORT            server to configure (default 127.0.0.1:5432)
#   ETP_TSDB_DEBIAN_SUITE      Debian suite to take the source from (default trixie)
#   ETP_TSDB_DEBIAN_MIRROR     Debian mirror URL (default: the one apt already uses)
#   ETP_APT_UPDATED=1          apt-get update already ran in this provisioning run
set -euo pipefail

PGHOST_=${PGHOST:-127.0.0.1}
PGPORT_=${PGPORT:-5432}
SUITE=${ETP_TSDB_DEBIAN_SUITE:-trixie}

log() { echo "timescaledb: $*"; }
die() { echo "timescaledb: ERROR: $*" >&2; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root for: $*"
    fi
}

# Run SQL as the postgres superuser: TCP first (trust auth in dev/CI), falling
# back to the local socket with peer auth (fresh Debian installs).
PSQL_MODE=
psql_su() {
    if [[ -z $PSQL_MODE ]]; then
        if psql -h "$PGHOST_" -p "$PGPORT_" -U postgres -d postgres -XAtqw -c 'select 1' >/dev/null 2>&1; then
            PSQL_MODE=tcp
        elif [[ $EUID -eq 0 ]] && command -v runuser >/dev/null 2>&1 &&
            runuser -u postgres -- psql -p "$PGPORT_" -d postgres -XAtq -c 'select 1' >/dev/null 2>&1; then
            PSQL_MODE=socket
        else
            die "cannot connect to PostgreSQL at $PGHOST_:$PGPORT_ as postgres (is it running? run deploy/local/setup.sh)"
        fi
    fi
    if [[ $PSQL_MODE == tcp ]]; then
        psql -h "$PGHOST_" -p "$PGPORT_" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"
    else
        runuser -u postgres -- psql -p "$PGPORT_" -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"
    fi
}

is_preloaded() {
    local libs
    libs=$(psql_su -c 'show shared_preload_libraries')
    [[ ",${libs// /}," == *,timescaledb,* ]]
}

is_available() {
    [[ $(psql_su -c "select count(*) from pg_available_extensions where name = 'timescaledb'") -gt 0 ]]
}

# ------------------------------------------------------- cluster discovery --
psql_su -c 'select 1' >/dev/null # pick the connection method once, in this shell
version_num=$(psql_su -c 'show server_version_num')
PGMAJOR=$((version_num / 10000))
config_file=$(psql_su -c 'show config_file')
CONF_DIR=$(dirname "$config_file")
CLUSTER=$(basename "$CONF_DIR")
# Debian layout: /etc/postgresql/<major>/<cluster>/postgresql.conf
if [[ $(basename "$(dirname "$CONF_DIR")") != "$PGMAJOR" ]] && command -v pg_lsclusters >/dev/null 2>&1; then
    CLUSTER=$(pg_lsclusters -h | awk -v v="$PGMAJOR" -v p="$PGPORT_" '$1 == v && $3 == p {print $2; exit}')
fi
[[ -n $CLUSTER ]] || die "could not determine the cluster name for PostgreSQL $PGMAJOR on port $PGPORT_"

PG_CONFIG=/usr/lib/postgresql/$PGMAJOR/bin/pg_config
if [[ -x $PG_CONFIG ]]; then
    PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
    SHAREDIR=$("$PG_CONFIG" --sharedir)
else
    PKGLIBDIR=/usr/lib/postgresql/$PGMAJOR/lib
    SHAREDIR=/usr/share/postgresql/$PGMAJOR
fi

# Telemetry is off, or this build has none (the GUC lives in the versioned
# library; before that is loaded, a value from the config is a placeholder).
telemetry_ok() {
    [[ $(psql_su -c "select coalesce(current_setting('timescaledb.telemetry_level', true), '')") == off ]] ||
        ! grep -qs telemetry_level "$PKGLIBDIR"/timescaledb-*.so
}

# ---------------------------------------------------------------- fast path --
if is_available && is_preloaded && telemetry_ok; then
    log "already available"
    exit 0
fi
log "PostgreSQL $PGMAJOR cluster '$CLUSTER' ($config_file)"

APT_UPDATED=${ETP_APT_UPDATED:-0}
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $APT_UPDATED != 1 ]]; then
        log "apt-get update"
        as_root apt-get update -q
        APT_UPDATED=1
    fi
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# The mirror this machine already uses for Debian (not debian-security).
find_mirror() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f $f ]] || continue
            awk 'tolower($1) == "uris:" {for (i = 2; i <= NF; i++) print $i}' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f $f ]] || continue
            # deb [opts] URI suite components...
            sed -E -n 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\3/p' "$f"
        done
    } | grep -E '^(https?|file|mirror\+[a-z]+)://' | grep -v -- '-security' | grep -Ev '/(debian-ports|ubuntu)' | head -n1
}

install_files_present() {
    compgen -G "$PKGLIBDIR/timescaledb*.so" >/dev/null &&
        [[ -f $SHAREDIR/extension/timescaledb.control ]]
}

# ---------------------------------------------------------------- build ------
if install_files_present; then
    log "extension files already installed for PostgreSQL $PGMAJOR ($SHAREDIR/extension/timescaledb.control); skipping build"
else
    apt_install build-essential cmake xz-utils libssl-dev libkrb5-dev "postgresql-server-dev-$PGMAJOR"

    mirror=${ETP_TSDB_DEBIAN_MIRROR:-$(find_mirror)}
    [[ -n $mirror ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d}; set ETP_TSDB_DEBIAN_MIRROR"
    mirror=${mirror%/}

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/etp-timescaledb.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT

    log "fetching the timescaledb source package from $SUITE ($mirror)"
    echo "deb-src $mirror $SUITE main" >"$tmp/src.list"
    mkdir -p "$tmp/lists/partial"
    apt_opts=(
        -o "Dir::Etc::sourcelist=$tmp/src.list" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
        -o "APT::Sandbox::User=root"
    )
    apt-get "${apt_opts[@]}" -q update >"$tmp/apt-update.log" 2>&1 ||
        { cat "$tmp/apt-update.log" >&2; die "apt-get update for $SUITE sources failed"; }
    (cd "$tmp" && apt-get "${apt_opts[@]}" -q source --download-only timescaledb) >"$tmp/apt-source.log" 2>&1 ||
        { cat "$tmp/apt-source.log" >&2; die "apt-get source timescaledb failed"; }

    orig=$(compgen -G "$tmp/timescaledb_*.orig.tar.*" | head -n1) || true
    [[ -n $orig ]] || die "no timescaledb orig tarball downloaded"
    version=$(basename "$orig")
    version=${version#timescaledb_}
    version=${version%%.orig.tar.*}
    log "building ${version%%+*} (Debian $version) from Debian source (Apache-only, PostgreSQL $PGMAJOR) ..."
    tar xf "$orig" -C "$tmp"
    srcdir=$(compgen -G "$tmp/timescaledb-*/" | head -n1) || true
    [[ -n $srcdir && -x $srcdir/bootstrap ]] || die "unexpected source layout in $orig"

    (
        cd "$srcdir"
        ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
            -DWARNINGS_AS_ERRORS=OFF -DCMAKE_BUILD_TYPE=Release \
            -DPG_CONFIG="/usr/lib/postgresql/$PGMAJOR/bin/pg_config" >"$tmp/bootstrap.log" 2>&1 ||
            { cat "$tmp/bootstrap.log" >&2; exit 1; }
        make -C build -j"$(nproc)" >"$tmp/make.log" 2>&1 || { tail -n 60 "$tmp/make.log" >&2; exit 1; }
        log "installing $version into $PKGLIBDIR and $SHAREDIR/extension"
        as_root make -C build install >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; exit 1; }
    ) || die "build of timescaledb $version failed"
    install_files_present || die "build finished but extension files are missing"
fi

# ------------------------------------------------------ configure + restart --
CONF_FILE=$CONF_DIR/conf.d/timescaledb.conf

has_confd_include() {
    grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'?conf\.d'?" "$config_file" 2>/dev/null
}

restart_cluster() {
    log "restarting PostgreSQL $PGMAJOR/$CLUSTER"
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$PGMAJOR" "$CLUSTER" restart
    else
        as_root runuser -u postgres -- "/usr/lib/postgresql/$PGMAJOR/bin/pg_ctl" \
            -D "$(psql_su -c 'show data_directory')" -w restart
    fi
    local _
    for _ in $(seq 1 60); do
        pg_isready -q -h "$PGHOST_" -p "$PGPORT_" && return 0
        sleep 1
    done
    die "PostgreSQL did not come back within 60s after restart"
}

if is_preloaded; then
    log "already in shared_preload_libraries"
else
    current=$(psql_su -c 'show shared_preload_libraries')
    current=${current// /}
    if [[ -z $current ]]; then libs=timescaledb; else libs="$current,timescaledb"; fi
    # ALTER SYSTEM needs a list of quoted names ('a', 'b'), not one 'a,b' string.
    libs_sql="'${libs//,/"', '"}'"
    # A value set via ALTER SYSTEM (postgresql.auto.conf) overrides conf.d.
    source_file=$(psql_su -c "select coalesce(sourcefile, '') from pg_settings where name = 'shared_preload_libraries'")
    if has_confd_include && [[ $source_file != */postgresql.auto.conf ]]; then
        log "setting shared_preload_libraries = '$libs' in $CONF_FILE"
        printf "# Managed by deploy/local/timescaledb.sh\nshared_preload_libraries = '%s'\n" "$libs" |
            as_root tee "$CONF_FILE" >/dev/null
    else
        log "setting shared_preload_libraries = '$libs' via ALTER SYSTEM"
        psql_su -c "alter system set shared_preload_libraries = $libs_sql"
    fi
    restart_cluster
    if ! is_preloaded; then
        # e.g. a conf.d file sorting after ours sets it too: ALTER SYSTEM wins.
        log "not effective yet; setting it via ALTER SYSTEM"
        psql_su -c "alter system set shared_preload_libraries = $libs_sql"
        restart_cluster
    fi
    is_preloaded || die "timescaledb is still not in shared_preload_libraries"
fi

if telemetry_ok; then
    log "telemetry: off or not compiled in"
else
    if has_confd_include && ! grep -qs '^timescaledb.telemetry_level' "$CONF_FILE"; then
        log "setting timescaledb.telemetry_level = 'off' in $CONF_FILE"
        [[ -f $CONF_FILE ]] || echo "# Managed by deploy/local/timescaledb.sh" | as_root tee "$CONF_FILE" >/dev/null
        echo "timescaledb.telemetry_level = 'off'" | as_root tee -a "$CONF_FILE" >/dev/null
    else
        log "setting timescaledb.telemetry_level = 'off' via ALTER SYSTEM"
        psql_su -c "alter system set timescaledb.telemetry_level = 'off'"
    fi
    psql_su -c 'select pg_reload_conf()' >/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do telemetry_ok && break; sleep 0.3; done
    telemetry_ok || log "WARNING: timescaledb.telemetry_level is still not 'off'"
fi

is_available || die "timescaledb is not in pg_available_extensions after install"
log "available: $(psql_su -c "select default_version from pg_available_extensions where name = 'timescaledb'") (preloaded in PostgreSQL $PGMAJOR/$CLUSTER)"
