#!/usr/bin/env bash
# Install what Cove needs on a Debian host, then the Python package into $REPO/.venv.
#
#   sudo bash scripts/install.sh                   # runc, Python, the default image's packages, .venv
#   sudo bash scripts/install.sh --with-test-deps  # also PostgreSQL (the tests start it), node and a JDK
#   sudo bash scripts/install.sh --runsc-only      # only gVisor's runsc (runtime "gvisor"; all installs have it)
#
# Safe to run again: apt runs only when a package is missing, pip only when pyproject.toml changed.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SCRIPT")/.." && pwd)"

with_test_deps=0
runsc_only=0
for arg in "$@"; do
    case "$arg" in
        --with-test-deps) with_test_deps=1 ;;
        --runsc-only) runsc_only=1 ;;
        -h | --help)
            sed -n '2,8s/^# \{0,1\}//p' "$SCRIPT"
            exit 0
            ;;
        *)
            echo "install: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

# Installing packages and running runc containers both need root.
if [[ $EUID -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
        echo "install: must run as root (and sudo is not installed)" >&2
        exit 1
    fi
    echo "install: re-running as root with sudo"
    exec sudo -- bash "$SCRIPT" "$@"
fi

log() { echo "install: $*"; }

# gVisor's runsc runs the sessions created with runtime "gvisor". It needs a build with the systrap
# platform (2024 or later): on Debian bookworm that is bookworm-backports, whose suite is added to
# apt's sources if it is missing. Newer Debian releases ship such a build in their main suite.
runsc_has_systrap() {
    command -v runsc >/dev/null && runsc flags 2>&1 | grep systrap >/dev/null
}
install_runsc() {
    if runsc_has_systrap; then
        log "runsc already installed"
    else
        export DEBIAN_FRONTEND=noninteractive
        codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
        if [[ "$codename" == bookworm ]]; then
            if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
                log "adding the bookworm-backports suite to apt's sources (for runsc)"
                printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
                    'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
                    >/etc/apt/sources.list.d/cove-bookworm-backports.sources
            fi
            apt-get update -q
            log "installing runsc from bookworm-backports"
            apt-get install -y -q --no-install-recommends -t bookworm-backports runsc
        else
            apt-get update -q
            log "installing runsc"
            apt-get install -y -q --no-install-recommends runsc
        fi
    fi
}

if [[ $runsc_only -eq 1 ]]; then
    install_runsc
    exit 0
fi

# The default sandbox image is copied from these host packages (src/cove/sandbox/host_image.py),
# so read the list from there rather than keeping a second copy that could drift.
HOST_IMAGE="$REPO/src/cove/sandbox/host_image.py"
mapfile -t image_packages < <(
    sed -n '/^LINUX_LATEST_PACKAGES = (/,/^)/p' "$HOST_IMAGE" | grep -oE '"[a-z0-9][a-z0-9.+-]*"' | tr -d '"'
)
if [[ ${#image_packages[@]} -eq 0 ]]; then
    echo "install: could not read LINUX_LATEST_PACKAGES from $HOST_IMAGE" >&2
    exit 1
fi

# runuser (util-linux) starts PostgreSQL as its own user in the tests; umount (mount) cleans up.
# `cove image build` runs debootstrap, which checks Debian's signatures with the keyring (also on Ubuntu).
# btrfs-progs formats the filesystem that holds sessions, with their disk limits.
# iproute2 and nftables give sessions their network path out and enforce its policy.
# gcc and libc6-dev build every sandbox's PID 1, a small static program (src/cove/agent/init.c).
packages=(runc python3 python3-venv python3-pip util-linux mount debootstrap debian-archive-keyring btrfs-progs
    iproute2 nftables gcc libc6-dev
    "${image_packages[@]}")
if [[ $with_test_deps -eq 1 ]]; then
    # run_code's JavaScript, TypeScript and Java kernels are tested on the host too (in sessions,
    # code_latest brings its own Node.js, JDK and R). Chromium opens the desktop viewer in the tests.
    packages+=(postgresql nodejs node-typescript default-jdk-headless chromium)
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for package in "${packages[@]}"; do
    if ! is_installed "$package"; then
        missing+=("$package")
    fi
done

installed_postgresql=0
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    for package in "${missing[@]}"; do
        if [[ "$package" == postgresql ]]; then
            installed_postgresql=1
        fi
    done
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "system packages already installed"
fi

install_runsc

# The tests run their own throwaway PostgreSQL server from /usr/lib/postgresql/*/bin; the cluster
# the Debian package creates and starts would only hold a port and memory, so stop it right after
# installing (a cluster the admin started later is left alone). Containers may lack systemd.
if [[ $installed_postgresql -eq 1 ]]; then
    log "stopping the distribution's PostgreSQL cluster (the tests start their own)"
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
            if [[ "$status" == online* ]]; then
                pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
            fi
        done || true
    fi
fi

# The Python package. Debian's own python3 is the one apt just guaranteed, so build the venv
# with it; an existing, working .venv is kept as it is.
VENV="$REPO/.venv"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating $VENV"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
fi

stamp="$VENV/.installed-$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [[ -e "$stamp" ]]; then
    log "python packages up to date"
else
    log "pip install -e .[dev] into $VENV"
    (cd "$REPO" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]")
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
# Browser code from the npm registry, each tarball checked by its hash: the desktop viewer's client
# (noVNC) and the web console's terminal (xterm.js).
"$VENV/bin/python" -m cove.server.npm_packages
log "sandbox init: $("$VENV/bin/python" -m cove.sandbox.init_binary)"
log "done"
