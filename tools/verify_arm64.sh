#!/usr/bin/env bash
# Run .tflite files on ARM64 LiteRT kernels under qemu user-mode emulation
# and compare them with the x86-64 runtime and with Keras.
#
# Usage:
#   bash tools/verify_arm64.sh FILE.tflite [FILE.tflite ...]
#   bash tools/verify_arm64.sh --exports      # export a representative set
#   bash tools/verify_arm64.sh --setup-only   # build the cache and stop
# Add --current-only to skip the two older runtimes.
#
# The first run builds an aarch64 userland in $KERAS_TT_ARM64_CACHE
# (default: .arm64/ in the checkout), from scratch and without installing
# anything aarch64 into the host:
#   - Debian's qemu-user-static on the host (apt-get install if missing),
#   - an aarch64 Python unpacked from Debian's arm64 packages (a private apt
#     configuration downloads them; dpkg -x unpacks them, nothing is
#     installed),
#   - aarch64 wheels of numpy and of three LiteRT runtimes from PyPI:
#     ai-edge-litert at the host's version, ai-edge-litert 1.4.0 and
#     tflite-runtime 2.14.0 (the older ones tell which runtimes load a file),
#   - an ARM /proc/cpuinfo and /sys/devices/system/cpu/{possible,present}
#     under the emulator's -L prefix: LiteRT reads them to pick kernels, and
#     the host's x86 ones crash it. They describe a Cortex-A76, the core that
#     qemu emulates (-cpu cortex-a76); `-cpu max` advertises SME, on which
#     XNNPACK's int8 kernels gave wrong results, so a real core is pinned.
# Later runs reuse the cache. KERAS_TT_ARM64_KEEP=1 keeps the exported files
# and all outputs (in a temporary folder it names). Each .tflite FILE may have FILE.npz beside it
# (inputs and Keras outputs, written by tools/export_arm64_set.py); see
# tools/arm64_check.py for what is compared and the tolerances.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KERAS_TT_ARM64_CACHE:-$ROOT/.arm64}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
QEMU_CPU="${KERAS_TT_ARM64_CPU:-cortex-a76}"
SYSROOT="$CACHE/sysroot"
DEBIAN_PACKAGES="python3 libstdc++6 libgcc-s1 zlib1g"

log() { printf '[verify-arm64] %s\n' "$*" >&2; }
die() {
    printf '[verify-arm64] ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

EXPORTS=0
SETUP_ONLY=0
CURRENT_ONLY=0
FILES=()
for arg in "$@"; do
    case "$arg" in
    --exports) EXPORTS=1 ;;
    --setup-only) SETUP_ONLY=1 ;;
    --current-only) CURRENT_ONLY=1 ;;
    -h | --help) usage ;;
    -*) die "unknown option $arg (expected --exports, --setup-only, --current-only or .tflite files)" ;;
    *) FILES+=("$arg") ;;
    esac
done
if [[ $EXPORTS == 0 && $SETUP_ONLY == 0 && ${#FILES[@]} == 0 ]]; then
    usage
fi
[[ -x $PYTHON ]] || die "no host Python at $PYTHON (run 'make test' first, or set PYTHON=)"

# ----------------------------------------------------------------- qemu
setup_qemu() {
    if command -v qemu-aarch64-static >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null ||
        die "qemu-aarch64-static is missing and this is not a Debian-like system with apt-get"
    [[ $(id -u) == 0 ]] ||
        die "qemu-aarch64-static is missing: run 'apt-get install qemu-user-static' as root"
    log "installing qemu-user-static (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends qemu-user-static >/dev/null
}

# ---------------------------------------------------- aarch64 userland
# A private apt configuration (its own lists, cache and empty dpkg status)
# that sees the host's Debian sources for arm64 only. The host's dpkg
# architectures and package state are not touched.
apt_arm64() {
    local apt="$CACHE/apt"
    apt-get \
        -o APT::Architecture=arm64 \
        -o APT::Architectures::=arm64 \
        -o Dir::State="$apt/state" \
        -o Dir::State::status="$apt/state/status" \
        -o Dir::Cache="$apt/cache" \
        -o Dir::Etc::SourceList="$apt/sources.list" \
        -o Dir::Etc::SourceParts="$apt/sources.list.d" \
        -o Debug::NoLocking=1 \
        "$@"
}

setup_sysroot() {
    if [[ -f $SYSROOT/.complete ]]; then
        return
    fi
    command -v apt-get >/dev/null ||
        die "building the aarch64 userland needs apt-get and dpkg (Debian)"
    log "downloading an aarch64 Python from Debian's arm64 packages"
    local apt="$CACHE/apt"
    rm -rf "$apt" "$SYSROOT"
    mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" \
        "$apt/sources.list.d"
    : >"$apt/state/status"
    if [[ -f /etc/apt/sources.list ]]; then
        cp /etc/apt/sources.list "$apt/sources.list"
    else
        : >"$apt/sources.list"
    fi
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && cp "$f" "$apt/sources.list.d/"
    done
    apt_arm64 -qq update >/dev/null 2>"$apt/update.log" ||
        log "apt-get update reported errors (see $apt/update.log); trying anyway"
    # shellcheck disable=SC2086
    apt_arm64 -qq -y --no-install-recommends install --download-only \
        $DEBIAN_PACKAGES >"$apt/download.log" 2>&1 ||
        die "could not download the arm64 packages (see $apt/download.log)"
    mkdir -p "$SYSROOT"
    local deb
    for deb in "$apt"/cache/archives/*.deb; do
        dpkg -x "$deb" "$SYSROOT"
    done
    write_cpu_files
    touch "$SYSROOT/.complete"
}

# What LiteRT (through the cpuinfo library) reads to choose kernels: four
# Cortex-A76 cores (MIDR 0x414fd0b1, qemu's cortex-a76 model) with the
# features that core has.
write_cpu_files() {
    mkdir -p "$SYSROOT/proc" "$SYSROOT/sys/devices/system/cpu"
    local i
    for i in 0 1 2 3; do
        printf 'processor\t: %d\n' "$i"
        printf 'BogoMIPS\t: 50.00\n'
        printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\n'
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n'
        printf 'CPU part\t: 0xd0b\nCPU revision\t: 1\n\n'
    done >"$SYSROOT/proc/cpuinfo"
    echo 0-3 >"$SYSROOT/sys/devices/system/cpu/possible"
    echo 0-3 >"$SYSROOT/sys/devices/system/cpu/present"
}

guest_python() {
    local py
    py="$(find "$SYSROOT/usr/bin" -maxdepth 1 -name 'python3.[0-9]*' \
        ! -name '*-config' | sort -V | tail -n 1)"
    [[ -n $py ]] || die "no python3.X in $SYSROOT/usr/bin"
    echo "$py"
}

# ------------------------------------------------------- aarch64 wheels
# name|requirements|platform tags (pip needs the exact manylinux tag that
# each release publishes; ai-edge-litert 2.x is manylinux_2_27 only).
runtime_specs() {
    local litert numpy
    litert="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("ai-edge-litert"))')"
    numpy="$("$PYTHON" -c 'import numpy; print(numpy.__version__)')"
    echo "ai-edge-litert-$litert|ai-edge-litert==$litert numpy==$numpy|manylinux_2_27_aarch64 manylinux_2_17_aarch64"
    echo "ai-edge-litert-1.4.0|ai-edge-litert==1.4.0|manylinux_2_17_aarch64"
    echo "tflite-runtime-2.14.0|tflite-runtime==2.14.0 numpy<2|manylinux_2_34_aarch64 manylinux_2_17_aarch64"
}

setup_wheels() {
    local pyver="$1" name reqs platforms
    while IFS='|' read -r name reqs platforms; do
        local site="$CACHE/site/$name"
        if [[ -f $site/.complete ]]; then
            continue
        fi
        log "downloading aarch64 wheels: $reqs"
        local wheels="$CACHE/wheels/$name"
        rm -rf "$wheels" "$site"
        mkdir -p "$wheels" "$site"
        local args=() p
        for p in $platforms; do args+=(--platform "$p"); done
        # shellcheck disable=SC2086
        "$PYTHON" -m pip download --quiet --disable-pip-version-check \
            --only-binary=:all: --implementation cp \
            --python-version "$pyver" --abi "cp${pyver/./}" "${args[@]}" \
            --dest "$wheels" $reqs >"$wheels.log" 2>&1 ||
            die "pip download failed for $reqs (see $wheels.log)"
        local whl
        for whl in "$wheels"/*.whl; do
            "$PYTHON" -m zipfile -e "$whl" "$site"
        done
        touch "$site/.complete"
    done < <(runtime_specs)
}

# ---------------------------------------------------------------- main
START=$SECONDS
mkdir -p "$CACHE"
setup_qemu
setup_sysroot
GUEST_PY="$(guest_python)"
PYVER="$(basename "$GUEST_PY")"
PYVER="${PYVER#python}"
setup_wheels "$PYVER"
log "setup done in $((SECONDS - START)) s (cache: $CACHE)"
if [[ $SETUP_ONLY == 1 ]]; then
    exit 0
fi

RUNTIMES=()
while IFS='|' read -r name _; do
    RUNTIMES+=("$name=$CACHE/site/$name")
    if [[ $CURRENT_ONLY == 1 ]]; then break; fi
done < <(runtime_specs)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/keras_tt_arm64.XXXXXX")"
cleanup() {
    if [[ -n ${KERAS_TT_ARM64_KEEP:-} ]]; then
        log "kept the exported files and outputs in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
if [[ $EXPORTS == 1 ]]; then
    log "exporting the representative set into $WORK/exports"
    mkdir -p "$WORK/exports"
    T=$SECONDS
    "$PYTHON" "$ROOT/tools/export_arm64_set.py" "$WORK/exports"
    log "export done in $((SECONDS - T)) s"
    while IFS= read -r f; do FILES+=("$f"); done < <(ls "$WORK"/exports/*.tflite)
fi

T=$SECONDS
status=0
"$PYTHON" "$ROOT/tools/arm64_check.py" \
    --qemu "qemu-aarch64-static -cpu $QEMU_CPU -L $SYSROOT" \
    --guest-python "$GUEST_PY" \
    --work "$WORK/check" \
    "${RUNTIMES[@]/#/--runtime=}" \
    "${FILES[@]}" || status=$?
log "checks done in $((SECONDS - T)) s; total $((SECONDS - START)) s"
exit "$status"
