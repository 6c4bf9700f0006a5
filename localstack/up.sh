#!/usr/bin/env bash
# Starts the local test bed on loopback, without Docker:
#   LocalStack (host mode)   http://127.0.0.1:4566   S3, EC2, IAM, STS, KMS, SSM, Secrets Manager, Redshift
#   moto server (sidecar)    http://127.0.0.1:5000   Glue, Redshift Data API, Directory Service
#   Tansu (Kafka API broker) 127.0.0.1:9092          SQLite storage engine
#
# Installs what is missing first (idempotent; see localstack/lib.sh for where), waits until each
# service answers, records PIDs and logs under localstack/.run/, and prints the endpoints.
# Running it again while everything is up changes nothing. Stop with localstack/down.sh.
set -euo pipefail
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$CACHE_DIR" "$RUN_DIR"

# --- install ---------------------------------------------------------------------------------

# A Python >= 3.13 for LocalStack (2026.3 imports warnings.deprecated, new in 3.13): PATH
# first, then pyenv's versions.
find_python313() {
    local candidate
    for candidate in python3.14 python3.13 python3 \
        $(ls -d "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 2>/dev/null | sort -rV); do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Creates venv $1 with interpreter $2 and installs the specs that follow, unless a marker file
# says exactly these specs are already installed there with that interpreter version.
ensure_venv() {
    local venv=$1 python=$2
    shift 2
    local want
    want="$("$python" -c 'import platform; print(platform.python_version())') $*"
    if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$want" ]; then
        return 0
    fi
    log "installing into $venv: $want (first run only, a few minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$want" >"$venv/.installed"
}

# Tansu 0.6.0 from crates.io's sources with one fix (localstack/patches/): its DeleteTopics
# deletes every topic of the cluster, which on a shared bed wipes the other tests' topics.
ensure_tansu() {
    [ -x "$TANSU_BIN" ] && return 0
    command -v cargo >/dev/null || { log "cargo is required to build the Tansu broker"; exit 1; }
    log "building the Tansu $TANSU_VERSION broker (patched) into $(dirname "$(dirname "$TANSU_BIN")") (first run only, about 12 min on 2 cores)"
    local work crate
    work=$(mktemp -d)
    for crate in tansu tansu-storage; do
        fetch "https://static.crates.io/crates/$crate/$crate-$TANSU_VERSION.crate" | tar -xz -C "$work"
    done
    cp "$TESTBED_ROOT/localstack/patches/tansu-storage-topic_delete_by.sql" \
        "$work/tansu-storage-$TANSU_VERSION/src/sql/topic_delete_by.sql"
    printf '\n[patch.crates-io]\ntansu-storage = { path = "../tansu-storage-%s" }\n' "$TANSU_VERSION" \
        >>"$work/tansu-$TANSU_VERSION/Cargo.toml"
    # The crate's Cargo.lock pins every other dependency; only the patched one changes.
    (cd "$work/tansu-$TANSU_VERSION" && CARGO_TARGET_DIR="$work/target" cargo build --quiet --release --features libsql)
    mkdir -p "$(dirname "$TANSU_BIN")"
    cp "$work/target/release/tansu" "$TANSU_BIN"
    rm -rf "$work"
}

# Downloads $1 to stdout (curl, else Python's urllib).
fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL "$1"
    else
        python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' "$1"
    fi
}

# The real consumers of rendered files that the tests run (tests/rendered.rs): cloud-init's
# schema validation, and strongSwan's charon and swanctl; Graphviz's dot, which reads
# `indutech graph --format dot` (tests/graph.rs); stunnel, the SASL broker's TLS. Debian
# packages; installed when missing (the package lists are refreshed when they are stale).
ensure_debian_packages() {
    local missing=()
    command -v cloud-init >/dev/null 2>&1 || missing+=(cloud-init)
    command -v swanctl >/dev/null 2>&1 || missing+=(strongswan-swanctl)
    command -v stunnel4 >/dev/null 2>&1 || missing+=(stunnel4)
    command -v dot >/dev/null 2>&1 || missing+=(graphviz)
    [ -x /usr/lib/ipsec/charon ] || missing+=(strongswan-charon)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { log "WARNING: no apt-get: install ${missing[*]} for tests/rendered.rs and tests/graph.rs"; return 0; }
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    }
}

# INDUTECH_LOCALSTACK_PYTHON picks the interpreter; set it empty to run moto for everything.
if [ -n "${INDUTECH_LOCALSTACK_PYTHON+set}" ]; then
    LOCALSTACK_PYTHON=$INDUTECH_LOCALSTACK_PYTHON
else
    LOCALSTACK_PYTHON=$(find_python313 || true)
fi
if [ -n "$LOCALSTACK_PYTHON" ]; then
    ensure_venv "$LOCALSTACK_VENV" "$LOCALSTACK_PYTHON" "$LOCALSTACK_SPEC" "${LOCALSTACK_EXTRA_SPECS[@]}"
else
    log "WARNING: no Python >= 3.13 found (LocalStack 2026.3 needs it); moto will serve every AWS service on $LOCALSTACK_ADDR as well"
fi
ensure_venv "$MOTO_VENV" "$(command -v python3)" "$MOTO_SPEC"
ensure_venv "$CLIENTS_VENV" "$(command -v python3)" "${CLIENTS_SPECS[@]}"
ensure_venv "$CHECKOV_VENV" "$(command -v python3)" "$CHECKOV_SPEC"
ensure_tansu
ensure_debian_packages

# --- start -----------------------------------------------------------------------------------

if command -v curl >/dev/null 2>&1; then
    answers_http() { curl -fs -o /dev/null --max-time 2 "$1"; }
else
    answers_http() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }
fi
# Whether process $1 exists and has not exited (a child we have not reaped stays a zombie).
running() {
    local state
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}
answers_tcp() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

# start NAME MARKER PROBE... -- COMMAND...: runs COMMAND in its own session (so down.sh can stop
# the whole process group) with its log under .run/NAME/, unless our process is already running.
start() {
    local name=$1 marker=$2
    shift 2
    local probe=()
    while [ "$1" != -- ]; do probe+=("$1"); shift; done
    shift
    local dir="$RUN_DIR/$name"
    mkdir -p "$dir"
    if pid=$(live_pid "$name"); then
        log "$name already running (pid $pid)"
        return 0
    fi
    if "${probe[@]}"; then
        log "$name: something not started by this script already answers; using it as is"
        return 0
    fi
    (cd "$dir" && exec setsid "$@" >>"$dir/log" 2>&1 </dev/null) &
    local launched=$!
    echo "$launched $marker" >"$(pid_file "$name")"
    local deadline=$((SECONDS + 90))
    until "${probe[@]}"; do
        # Not live_pid: until the subshell has exec'd, its command line lacks the marker.
        if ! running "$launched"; then
            log "$name exited during start-up; last lines of $dir/log:"
            tail -n 30 "$dir/log" >&2
            exit 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "$name did not answer within 90 s; last lines of $dir/log:"
            tail -n 30 "$dir/log" >&2
            exit 1
        fi
        sleep 0.3
    done
    log "$name up (pid $(live_pid "$name"))"
}

if [ -n "$LOCALSTACK_PYTHON" ]; then
    OVERRIDE_IN_DOCKER=0 GATEWAY_LISTEN=$LOCALSTACK_ADDR GATEWAY_SERVER=hypercorn \
        FILESYSTEM_ROOT="$RUN_DIR/localstack/data" DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 LOCALSTACK_CLI=0 \
        start localstack localstack.runtime.main \
        answers_http "http://$LOCALSTACK_ADDR/_localstack/health" -- \
        "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main
else
    MOTO_IAM_LOAD_MANAGED_POLICIES=true \
        start localstack "moto_server -H ${LOCALSTACK_ADDR%:*} -p ${LOCALSTACK_ADDR#*:}" \
        answers_http "http://$LOCALSTACK_ADDR/moto-api/" -- \
        "$MOTO_VENV/bin/moto_server" -H "${LOCALSTACK_ADDR%:*}" -p "${LOCALSTACK_ADDR#*:}"
fi

# moto_server.py: moto_server with its DMS timestamps in the AWS protocol (see the file).
MOTO_IAM_LOAD_MANAGED_POLICIES=true \
    start moto "moto_server.py -H ${MOTO_ADDR%:*} -p ${MOTO_ADDR#*:}" \
    answers_http "http://$MOTO_ADDR/moto-api/" -- \
    "$MOTO_VENV/bin/python" "$TESTBED_ROOT/localstack/moto_server.py" -H "${MOTO_ADDR%:*}" -p "${MOTO_ADDR#*:}"

# Tansu wants a relative sqlite path: the database lives in .run/broker/tansu.db.
start broker "$TANSU_BIN broker" answers_tcp "$BROKER_ADDR" -- \
    "$TANSU_BIN" broker \
    --listener-url "tcp://$BROKER_ADDR" --advertised-listener-url "tcp://$BROKER_ADDR" \
    --storage-engine sqlite://tansu.db

# The SASL/TLS broker: a CA and a certificate for 127.0.0.1 (openssl), the SCRAM users
# indutech-admin and indutech-worker created through a Tansu without authentication on the
# same database before the authenticated one starts; each principal's credentials, with the
# CA, in .run/broker-sasl/<principal>.json as indutech reads them from Secrets Manager (the
# tests put them there). Made once per database: delete .run/broker-sasl to start over.
ensure_sasl_broker() {
    local dir="$RUN_DIR/broker-sasl"
    # The SASL/TLS broker's CA and users are this folder's: one another checkout's up.sh started
    # has other credentials, with which every test here would fail its TLS handshake (a timeout,
    # not an error). Say so instead of using it.
    if ! live_pid broker-tls >/dev/null && answers_tcp "$SASL_BROKER_ADDR"; then
        local other
        other=$(ps -eo args= | sed -n 's|^stunnel4 \(.*\)/broker-tls/stunnel\.conf$|\1|p' | head -n 1)
        if [ -n "$other" ] && [ "$other" != "$RUN_DIR" ]; then
            log "the SASL/TLS broker on $SASL_BROKER_ADDR is another checkout's test bed ($other), with other credentials: stop that bed with its localstack/down.sh, or run from that checkout"
            exit 1
        fi
    fi
    mkdir -p "$dir"
    if [ ! -f "$dir/tansu.db" ] || [ ! -f "$dir/worker.json" ]; then
        rm -f "$dir"/tansu.db* "$dir"/*.json "$dir"/*.pem "$dir"/*.key
        (
            cd "$dir"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
                -subj "/CN=indutech test bed CA" -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
                -keyout broker.key -out broker.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >ext.cnf
            openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
                -extfile ext.cnf -out broker.pem 2>/dev/null
            rm -f broker.csr ext.cnf ca.srl ca.key
        )
        local setup=127.0.0.1:9194
        (cd "$dir" && exec setsid "$TANSU_BIN" broker --listener-url "tcp://$setup" \
            --advertised-listener-url "tcp://$setup" --storage-engine sqlite://tansu.db --silent \
            >>"$dir/users.log" 2>&1 </dev/null) &
        local pid=$! deadline=$((SECONDS + 30))
        until answers_tcp "$setup"; do
            [ $SECONDS -lt $deadline ] || { log "the SASL broker's user set-up did not start"; exit 1; }
            sleep 0.2
        done
        for principal in admin worker; do
            local password
            password=$(openssl rand -hex 24)
            "$TANSU_BIN" user create --broker "tcp://$setup" --mechanism scram512 \
                "indutech-$principal" "$password" >>"$dir/users.log" 2>&1
            python3 -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2], "ca_certificate": open(sys.argv[3]).read()}))' \
                "indutech-$principal" "$password" "$dir/ca.pem" >"$dir/$principal.json"
            chmod 600 "$dir/$principal.json"
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    fi
    start broker-sasl "$TANSU_BIN broker --listener-url tcp://$SASL_TANSU_ADDR" answers_tcp "$SASL_TANSU_ADDR" -- \
        "$TANSU_BIN" broker --listener-url "tcp://$SASL_TANSU_ADDR" \
        --advertised-listener-url "tcp://$SASL_BROKER_ADDR" --storage-engine sqlite://tansu.db --authentication
    mkdir -p "$RUN_DIR/broker-tls"
    printf 'foreground = yes\npid =\n[kafka]\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\n' \
        "$SASL_BROKER_ADDR" "$SASL_TANSU_ADDR" "$dir/broker.pem" "$dir/broker.key" >"$RUN_DIR/broker-tls/stunnel.conf"
    start broker-tls "stunnel4 $RUN_DIR/broker-tls/stunnel.conf" answers_tcp "$SASL_BROKER_ADDR" -- \
        stunnel4 "$RUN_DIR/broker-tls/stunnel.conf"
}
ensure_sasl_broker

cat <<EOF
test bed up:
  aws (LocalStack)   http://$LOCALSTACK_ADDR
  aws (moto sidecar) http://$MOTO_ADDR   glue, redshift-data, ds
  kafka broker       $BROKER_ADDR   (plaintext)
  kafka broker       $SASL_BROKER_ADDR   (SASL/SCRAM over TLS; credentials in $RUN_DIR/broker-sasl/*.json)
  test clients       $CLIENTS_VENV/bin/python   (confluent-kafka, pyarrow, duckdb)
  checkov            $CHECKOV_VENV/bin/checkov
  logs               $RUN_DIR/*/log
stop it with: localstack/down.sh
EOF
