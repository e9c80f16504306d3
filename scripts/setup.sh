#!/usr/bin/env bash
# Installs what building and checking tracer needs on a Debian machine: the nightly
# toolchain's rust-src and clippy, rustfmt and clippy for the default toolchain, LLVM 22 (for
# bpf-linker) and bpf-linker itself. Every `cargo xtask` subcommand runs it first.
# Idempotent: when everything is present it only checks and returns in about a second.
# Usage: scripts/setup.sh            (prints nothing when all is present)
#        scripts/setup.sh --bench    also the tools `cargo xtask bench` compares against:
#                                    bpftrace (required) and heaptrack (optional)
#        scripts/setup.sh --pprof    also Go (`go tool pprof`), which the export e2e test uses
#        scripts/setup.sh --fuzz     also cargo-fuzz, for `cargo xtask fuzz`
#        source <(scripts/setup.sh --env)   to get PATH for later commands
set -euo pipefail

LLVM_BIN=/usr/lib/llvm-22/bin
NIGHTLY=${TRACER_NIGHTLY:-nightly}

BENCH=0
PPROF=0
FUZZ=0
case "${1:-}" in
    --env)
        echo "export PATH=\"$LLVM_BIN:\$HOME/.cargo/bin:\$PATH\""
        exit 0
        ;;
    --bench) BENCH=1 ;;
    --pprof) PPROF=1 ;;
    --fuzz) FUZZ=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--bench | --pprof | --fuzz | --env]" >&2
        exit 1
        ;;
esac

log() { echo "setup: $*" >&2; }
need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        log "installing $1 needs root; re-run as root (sudo $0)"
        exit 2
    fi
}

export PATH="$LLVM_BIN:$HOME/.cargo/bin:$PATH"

command -v rustup >/dev/null || { log "rustup is missing: install Rust from rustup first"; exit 2; }

if ! rustup toolchain list | grep -q "^$NIGHTLY"; then
    log "installing the $NIGHTLY toolchain"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
fi
# has_component TOOLCHAIN COMPONENT
has_component() { rustup component list --toolchain "$1" --installed 2>/dev/null | grep -q "^$2"; }
# nightly: rust-src to build core for the BPF target, clippy for its lint pass;
# the default toolchain: rustfmt and clippy for the test command's lint steps.
for want in "$NIGHTLY rust-src" "$NIGHTLY clippy" "default rustfmt" "default clippy"; do
    read -r toolchain component <<<"$want"
    if [[ $toolchain == default ]]; then
        toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
    fi
    if ! has_component "$toolchain" "$component"; then
        log "adding $component to $toolchain"
        rustup component add "$component" --toolchain "$toolchain"
    fi
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_updated=0
apt_install() {
    need_root "$*"
    log "apt-get install $*"
    if ((apt_updated == 0)); then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# sqlite3 and heaptrack: the e2e test that checks stacks of a distribution program (built
# without frame pointers) against heaptrack's. The tests' workloads also need: g++ (C++),
# jemalloc, tcmalloc (gperftools) and mimalloc to link with, libc's debug symbols
# (symbolization by build id), redis-server with redis-benchmark (a real service on
# jemalloc), and prometheus with promtool (the --metrics test scrapes tracer with it).
pkgs=(llvm-22-dev libclang-22-dev clang-22 libpolly-22-dev zlib1g-dev libzstd-dev tmux sqlite3
    heaptrack g++ libc6-dbg libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev redis-server
    redis-tools prometheus)
missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi

if ! command -v bpf-linker >/dev/null || ! bpf-linker --version >/dev/null 2>&1; then
    log "building bpf-linker against LLVM 22 (about a minute)"
    cargo install bpf-linker --locked --no-default-features --features llvm-22
fi

if ((PPROF)); then
    command -v go >/dev/null || apt_install golang-go
fi

if ((FUZZ)) && ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if ((BENCH)); then
    # The benchmark's comparison points. bpftrace is required (the memleak-style script
    # bcc/bpftrace users run); heaptrack is optional: the benchmark notes its absence.
    installed bpftrace || apt_install bpftrace
    if ! installed heaptrack && ! apt_install heaptrack; then
        log "heaptrack could not be installed; the benchmark will skip it"
    fi
fi
