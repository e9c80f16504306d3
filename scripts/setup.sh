#!/usr/bin/env bash
# Installs what building tracer's eBPF programs needs on a Debian machine:
# the nightly toolchain's rust-src, LLVM 22 (for bpf-linker) and bpf-linker itself.
# Idempotent: when everything is present it only checks and returns in about a second.
# Usage: scripts/setup.sh            (prints nothing when all is present)
#        source <(scripts/setup.sh --env)   to get PATH for later commands
set -euo pipefail

LLVM_BIN=/usr/lib/llvm-22/bin
NIGHTLY=${TRACER_NIGHTLY:-nightly}

if [[ "${1:-}" == "--env" ]]; then
    echo "export PATH=\"$LLVM_BIN:\$HOME/.cargo/bin:\$PATH\""
    exit 0
fi

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
if ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
    log "adding rust-src to $NIGHTLY"
    rustup component add rust-src --toolchain "$NIGHTLY"
fi

pkgs=(llvm-22-dev libclang-22-dev clang-22 libpolly-22-dev zlib1g-dev libzstd-dev tmux)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    need_root "${missing[*]}"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v bpf-linker >/dev/null || ! bpf-linker --version >/dev/null 2>&1; then
    log "building bpf-linker against LLVM 22 (about a minute)"
    cargo install bpf-linker --locked --no-default-features --features llvm-22
fi
