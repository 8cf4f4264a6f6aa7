#!/usr/bin/env bash
# Set up a Debian 12 machine for lors: install the native dependencies that are missing, then build.
#
#   bash cluster/setup.sh              # install missing packages, then `swift build -c release`
#   bash cluster/setup.sh --deps-only  # install missing packages only
#
# Idempotent: packages are checked with dpkg-query, and apt-get (update + install) runs only when something
# is missing. Needs root, or sudo when run as another user. The Swift toolchain itself is not installed here.
set -euo pipefail

PACKAGES=(
    libopenmpi-dev        # MPI headers and libmpi (pkg-config ompi-c)
    openmpi-bin           # mpirun
    libopenblas-dev       # BLAS (pkg-config openblas)
    libhdf5-openmpi-dev   # parallel HDF5 1.10 (pkg-config hdf5-openmpi)
    zlib1g-dev            # gzip reading (pkg-config zlib)
    libdeflate-dev        # fast CRC-32 of checkpoint data (pkg-config libdeflate)
    libturbojpeg0-dev     # JPEG decoding and encoding, TurboJPEG API (pkg-config libturbojpeg)
    libpng-dev            # PNG decoding and encoding (pkg-config libpng)
    pkg-config            # SwiftPM resolves the system libraries through it
    dataset-fashion-mnist # real data for examples and tests (/usr/share/datasets/fashion-mnist)
)

deps_only=0
for argument in "$@"; do
    case "$argument" in
        --deps-only) deps_only=1 ;;
        -h|--help)
            sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *)
            echo "setup.sh: unknown option '$argument' (use --deps-only or --help)" >&2
            exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for package in "${PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup.sh: all native dependencies are installed (${PACKAGES[*]})"
else
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "setup.sh: missing packages: ${missing[*]}; run as root or install sudo" >&2
        exit 1
    fi
    echo "setup.sh: installing missing packages: ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    for package in "${missing[@]}"; do
        if ! is_installed "$package"; then
            echo "setup.sh: package $package is still not installed after apt-get install" >&2
            exit 1
        fi
    done
    echo "setup.sh: installed ${missing[*]}"
fi

if [ "$deps_only" -eq 1 ]; then
    exit 0
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup.sh: 'swift' is not on PATH; install the Swift 6 toolchain (https://swift.org/install) and re-run" >&2
    exit 1
fi
echo "setup.sh: building release binaries (swift build -c release)"
swift build -c release
echo "setup.sh: done; binaries are in $(swift build -c release --show-bin-path)"
