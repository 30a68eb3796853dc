#!/usr/bin/env bash
# A throwaway PostgreSQL server for crmkit's tests, on 127.0.0.1 and a non-default port.
#
#     export CRMKIT_TEST_POSTGRES_URL="$(bash .ci/postgres.sh start)"   # prints the URL to test against
#     python -m pytest tests/test_storage.py
#     bash .ci/postgres.sh stop                                        # stops it and deletes its files
#
#     bash .ci/postgres.sh url      # the URL of the server (running or not)
#     bash .ci/postgres.sh status   # exit 0 when it is running
#
# It needs PostgreSQL's server programs (initdb, pg_ctl): Debian's postgresql package, Homebrew's
# postgresql@15, or any install whose bin directory is on PATH or given as PG_BIN. The server refuses to
# run as root, so as root the script runs it as the unprivileged user PG_USER (postgres, created if
# missing); as a normal user it runs as that user. It uses fsync=off: it is a test server, never a
# place for data anyone wants to keep.
#
# Settings (environment): PG_PORT (55432), PG_DIR (/tmp/crmkit-postgres-$PG_PORT: data, socket and
# log), PG_DB (crmkit_test), PG_BIN (found automatically), PG_USER (postgres, used only as root),
# PG_INSTALL=1 (as root, apt-get install PostgreSQL when it is missing).
set -euo pipefail

PORT="${PG_PORT:-55432}"
DIR="${PG_DIR:-/tmp/crmkit-postgres-$PORT}"
DB="${PG_DB:-crmkit_test}"
ROLE="crmkit"
PASSWORD="crmkit-test-only"
URL="postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        printf '%s\n' "$PG_BIN"
        return
    fi
    local candidate
    # The newest Debian/Ubuntu install first, then whatever is on PATH.
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$candidate/pg_ctl" ]] && { printf '%s\n' "$candidate"; return; }
    done
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/pg_ctl" ]]; then
        pg_config --bindir
        return
    fi
    if [[ "${PG_INSTALL:-}" == 1 && $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing PostgreSQL with apt-get (PG_INSTALL=1)"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        unset PG_INSTALL
        find_bin
        return
    fi
    die "no PostgreSQL server programs (initdb, pg_ctl) found; install PostgreSQL (apt-get install -y postgresql) or set PG_BIN"
}

# as_owner CMD...: run a command as the user that owns the server's files.
as_owner() {
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$OWNER" -- "$@"
    else
        su "$OWNER" -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

setup_owner() {
    if [[ $EUID -ne 0 ]]; then
        OWNER="$(id -un)"
        return
    fi
    OWNER="${PG_USER:-postgres}"
    if ! id -u "$OWNER" >/dev/null 2>&1; then
        say "creating the unprivileged user $OWNER to run the server"
        useradd --system --no-create-home --shell /bin/sh "$OWNER" 2>/dev/null \
            || adduser --system --no-create-home --shell /bin/sh "$OWNER" >/dev/null
    fi
}

running() {
    [[ -f "$DIR/data/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" status -D "$DIR/data" >/dev/null 2>&1
}

start() {
    if running; then
        say "already running in $DIR"
        printf '%s\n' "$URL"
        return
    fi
    # A directory left by a crashed run (or another user) would make initdb fail: start afresh.
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    [[ $EUID -eq 0 ]] && chown "$OWNER" "$DIR"
    printf '%s\n' "$PASSWORD" >"$DIR/password"
    [[ $EUID -eq 0 ]] && chown "$OWNER" "$DIR/password"
    # Run from a directory the owner can read, so initdb does not complain about the cwd.
    cd "$DIR"
    as_owner "$BIN/initdb" -D "$DIR/data" -U "$ROLE" --pwfile="$DIR/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$DIR/password"
    # Listen on loopback only; the socket lives in our own directory (no /var/run/postgresql needed).
    local options="-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR"
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    as_owner "$BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -o "$options" >/dev/null \
        || { tail -n 30 "$DIR/server.log" >&2 || true; die "the server did not start"; }
    as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U "$ROLE" -d postgres -v ON_ERROR_STOP=1 -qAt \
        -c "CREATE DATABASE $DB" >/dev/null \
        || die "could not create the database $DB"
    say "PostgreSQL $("$BIN/pg_ctl" --version | awk '{print $3}') running on 127.0.0.1:$PORT (files in $DIR)"
    printf '%s\n' "$URL"
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t 60 >/dev/null
        say "stopped"
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start | stop | status)
        BIN="$(find_bin)"
        setup_owner
        case "$1" in
            start) start ;;
            stop) stop ;;
            status) running ;;
        esac
        ;;
    url) printf '%s\n' "$URL" ;;
    *)
        say "usage: bash .ci/postgres.sh start|stop|status|url"
        exit 2
        ;;
esac
