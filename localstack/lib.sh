# Shared settings for localstack/up.sh and localstack/down.sh (sourced, not run).
#
# Two folders, both outside version control:
# - the tool cache (INDUTECH_CACHE_DIR, default ~/.cache/indutech): Python venvs for LocalStack
#   and moto, and the Tansu broker binary, built once per machine and shared by every clone;
# - the run folder (localstack/.run, git-ignored): PID files, logs and emulator data of this clone.

TESTBED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${INDUTECH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/indutech}
RUN_DIR="$TESTBED_ROOT/localstack/.run"

# Pinned versions (see shared/DESIGN.md, "Test bed").
LOCALSTACK_SPEC='localstack-core[runtime]==2026.3.0'
LOCALSTACK_EXTRA_SPECS=('cbor2<6' 'pyopenssl<26')
MOTO_SPEC='moto[server]==5.2.5'
# Clients the project did not write, for the tests: a Kafka producer (every compression codec)
# and an independent Parquet reader of the lake.
CLIENTS_SPECS=('confluent-kafka==2.16.1' 'pyarrow==26.0.1' 'duckdb==1.4.2')
# The policy scanner the tests run on the Terraform export (tests/export.rs).
CHECKOV_SPEC='checkov==3.3.30'
TANSU_VERSION=0.6.0

LOCALSTACK_ADDR=127.0.0.1:4566
MOTO_ADDR=127.0.0.1:5000
BROKER_ADDR=127.0.0.1:9092
# A second broker that takes only SASL/SCRAM-SHA-512 over TLS, as indutech's brokers on AWS:
# stunnel terminates TLS on SASL_BROKER_ADDR (the advertised address) in front of a Tansu with
# authentication on SASL_TANSU_ADDR (Tansu 0.6 takes --cert/--key but never uses them).
SASL_BROKER_ADDR=127.0.0.1:9093
SASL_TANSU_ADDR=127.0.0.1:9192

LOCALSTACK_VENV="$CACHE_DIR/venv-localstack"
MOTO_VENV="$CACHE_DIR/venv-moto"
CLIENTS_VENV="$CACHE_DIR/venv-clients"
CHECKOV_VENV="$CACHE_DIR/venv-checkov"
# Tansu built with localstack/patches/ (bump TANSU_PATCH when they change: a new build).
TANSU_PATCH=1
TANSU_BIN="$CACHE_DIR/tansu-$TANSU_VERSION-fix$TANSU_PATCH/bin/tansu"

SERVICES=(localstack moto broker broker-sasl broker-tls)

log() { printf 'testbed: %s\n' "$*" >&2; }

pid_file() { echo "$RUN_DIR/$1/pid"; }

# The PID recorded for service $1, if that process is still alive and is the one we started
# (its command line still contains the marker we launched it with). Guards against PID reuse.
live_pid() {
    local file pid marker
    file=$(pid_file "$1")
    [ -f "$file" ] || return 1
    read -r pid marker <"$file" || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
    local rc=$?
    [ $rc -eq 0 ] && echo "$pid"
    return $rc
}
