#!/usr/bin/env bash
# The one test command for Strand:  ./scripts/test.sh
#
# On a fresh Debian machine (as root, or a user with sudo) it
#   1. installs the system tools the interop suite needs, only if missing
#      (kcat; python3 with venv support; a C toolchain for linking),
#   2. creates .venv and installs the pinned Python clients
#      (tests/interop/requirements.txt) and the pinned npm packages
#      (tests/interop/js: KafkaJS),
#   3. builds the broker:            cargo build --release -p strand
#   4. runs the Rust tests:          cargo test --workspace --release
#      and runs each Criterion micro-benchmark once (no timing is checked),
#   5. runs the interop suite:       .venv/bin/python -m pytest tests/interop -q
#      against target/release/strand with real third-party clients.
# Exits non-zero if any step fails.  A Rust toolchain (cargo >= 1.85) must
# already be installed (rustup); everything else is installed here.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
REQUIREMENTS="$REPO_ROOT/tests/interop/requirements.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
STRAND_BIN_PATH="$TARGET_DIR/release/strand"

section() { printf '\n==> %s\n' "$*"; }
die() { printf '\nscripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found; install these packages by hand: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# ---------------------------------------------------------------------------
section "System packages"
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)      # Debian splits ensurepip out of python3
fi
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)   # linker for rustc
command -v node >/dev/null 2>&1 || missing+=(nodejs)         # KafkaJS interop tests
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt_install "${missing[@]}"
else
    echo "kcat, python3 (with venv), cc, node and npm already present"
fi
command -v kcat >/dev/null 2>&1 || die "kcat is still missing after apt-get"
kcat -V 2>&1 | grep -m1 '^Version' || true

# A rustup install puts cargo in ~/.cargo/bin, which a bare environment may
# not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install a Rust toolchain >= 1.85 (https://rustup.rs) and re-run"
cargo --version

# ---------------------------------------------------------------------------
section "Python environment (.venv)"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "reusing $VENV"
else
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS"
"$VENV/bin/python" - <<'PY'
import aiokafka, confluent_kafka, kafka, pytest, sys
print("python", sys.version.split()[0],
      "| confluent-kafka", confluent_kafka.__version__,
      "(librdkafka %s)" % confluent_kafka.libversion()[0],
      "| kafka-python", kafka.__version__, "| aiokafka", aiokafka.__version__,
      "| pytest", pytest.__version__)
PY

# ---------------------------------------------------------------------------
section "npm packages (tests/interop/js)"
npm ci --prefix "$REPO_ROOT/tests/interop/js" --no-audit --no-fund --loglevel=error
node -e 'console.log("kafkajs", require(process.argv[1] + "/node_modules/kafkajs/package.json").version)' "$REPO_ROOT/tests/interop/js"

# ---------------------------------------------------------------------------
section "Build: cargo build --release -p strand"
cargo build --release -p strand
[ -x "$STRAND_BIN_PATH" ] || die "build finished but $STRAND_BIN_PATH does not exist"

failed=()

# ---------------------------------------------------------------------------
section "Rust tests: cargo test --workspace --release"
if ! cargo test --workspace --release; then
    failed+=("cargo test")
fi

# ---------------------------------------------------------------------------
section "Micro-benchmarks, each run once as a check: cargo test -p strand-bench --benches --release"
if ! cargo test -p strand-bench --benches --release; then
    failed+=("micro-benchmark check")
fi

# ---------------------------------------------------------------------------
section "Interop tests: pytest tests/interop (STRAND_BIN=$STRAND_BIN_PATH)"
if ! STRAND_BIN="$STRAND_BIN_PATH" "$VENV/bin/python" -m pytest tests/interop -q; then
    failed+=("interop tests")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\nscripts/test.sh: FAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
