#!/usr/bin/env bash
# Builds PoCL 6.0 (an OpenCL 3.0 implementation whose CPU device has the generic address space ILGPU's OpenCL back end
# needs) from its source archive and installs it for the current user, so that `--device opencl` runs on the CPU.
#
#   scripts/pocl/build-pocl.sh [ARCHIVE]        (or: dotnet fsi build.fsx pocl [ARCHIVE])
#
# ARCHIVE    the PoCL 6.0 source archive; default $HYBRID_POCL_ARCHIVE, else ../shared/vendor/pocl-6.0.tar.gz next to
#            the repository. Its SHA-256 must equal the one pinned below (the one in shared/vendor/SHA256SUMS).
# Installs   under ${XDG_CACHE_HOME:-~/.cache}/hybrid/pocl-6.0: a CPU-only build (the `cpu` device, one kernel
#            library variant for this machine's CPU) with its ICD file at etc/OpenCL/vendors/pocl.icd. Nothing is
#            written to /etc: Hybrid points the OpenCL ICD loader (ocl-icd) at that file itself through OCL_ICD_VENDORS
#            (docs/architecture.md, "OpenCL"); for other programs, `export OCL_ICD_VENDORS=<prefix>/etc/OpenCL/vendors`.
# Packages   Debian 12's llvm-16-dev, clang-16, libclang-16-dev, libclang-cpp16-dev, cmake, ocl-icd-dev,
#            ocl-icd-opencl-dev, ocl-icd-libopencl1, libhwloc-dev, pkg-config, make: installed with apt-get when missing
#            (as root, or through sudo).
# Cached     a second run finds the stamp file (archive SHA-256, build options and the CPU the kernel library was
#            built for) and does nothing; a changed stamp or a missing library rebuilds. JOBS=N sets the parallel
#            build jobs (default: every core); a build from scratch takes 15-25 minutes on 2 shared cores.
# Exit codes 0 built or already cached; 1 the archive is missing or has the wrong checksum, a package cannot be
#            installed, or the build fails (the log's last lines are printed and the log is kept).
set -euo pipefail

readonly POCL_VERSION=6.0
readonly POCL_SHA256=1c2dd4da91ad8a8619cc71611d9d6871f1bd3046b467b1694085e3ec6bc8c7d4
readonly LLVM_CONFIG=/usr/bin/llvm-config-16
readonly PACKAGES=(llvm-16-dev clang-16 libclang-16-dev libclang-cpp16-dev cmake make pkg-config ocl-icd-dev
                   ocl-icd-opencl-dev ocl-icd-libopencl1 libhwloc-dev)
# Bump when the options below change, so that cached builds with the old options are rebuilt.
readonly BUILD_OPTIONS_VERSION=1

fail() { echo "pocl: $*" >&2; exit 1; }

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    command -v apt-get >/dev/null || fail "these packages are missing and there is no apt-get to install them: $missing"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || fail "these packages are missing; install them as root: apt-get install $missing"
        sudo=(sudo)
    fi
    echo "pocl: installing $missing"
    "${sudo[@]}" apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        || fail "apt-get could not install: $missing"
}

# The kernel library is compiled for the CPU LLVM detects (one variant, which builds faster than the distro set), so
# the stamp names that CPU: a cache copied to a different machine is rebuilt instead of running foreign instructions.
host_cpu() { llc-16 --version 2>/dev/null | sed -n 's/^ *Host CPU: *//p'; }

expected_stamp() {
    printf 'pocl %s\narchive-sha256 %s\noptions %s\nhost-cpu %s\n' \
        "$POCL_VERSION" "$POCL_SHA256" "$BUILD_OPTIONS_VERSION" "$(host_cpu)"
}

# Runs one build step with its output appended to $log; on failure prints the log's tail and keeps the scratch folder.
step() {
    local name=$1; shift
    if ! "$@" >>"$log" 2>&1; then
        keep_work=1
        tail -n 40 "$log" >&2
        fail "$name failed; the whole log is $log"
    fi
}

build() {
    local archive=$1 prefix=$2 work=$3
    local jobs="${JOBS:-$(nproc)}" src="$work/pocl-$POCL_VERSION" generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    echo "pocl: building PoCL $POCL_VERSION for $(host_cpu) with $jobs jobs into $prefix (log: $log)"
    # PoCL's configure compiles probe files into the current folder: run everything inside the scratch folder.
    cd "$work"
    step "unpacking $archive" tar -xzf "$archive" -C "$work"
    [ -f "$src/CMakeLists.txt" ] || fail "'$archive' does not unpack to pocl-$POCL_VERSION/"
    step "cmake configure" cmake -S "$src" -B "$work/build" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DWITH_LLVM_CONFIG="$LLVM_CONFIG" \
        -DENABLE_ICD=ON \
        -DENABLE_HOST_CPU_DEVICES=ON \
        -DKERNELLIB_HOST_CPU_VARIANTS=native \
        -DENABLE_CUDA=OFF -DENABLE_HSA=OFF -DENABLE_LEVEL0=OFF -DENABLE_VULKAN=OFF -DENABLE_ALMAIF_DEVICE=OFF \
        -DENABLE_PROXY_DEVICE=OFF -DENABLE_REMOTE_CLIENT=OFF -DENABLE_REMOTE_SERVER=OFF -DENABLE_TBB_DEVICE=OFF \
        -DENABLE_SPIRV=OFF \
        -DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF -DENABLE_POCLCC=OFF \
        -DINSTALL_OPENCL_HEADERS=OFF
    step "build" cmake --build "$work/build" --parallel "$jobs"
    # Install into a staging root and move it into place, so an interrupted run never leaves a half-installed prefix
    # that a later run (or Hybrid) would take for a build.
    step "install" env DESTDIR="$work/stage" cmake --install "$work/build"
    [ -f "$work/stage$prefix/etc/OpenCL/vendors/pocl.icd" ] || fail "the build installed no ICD file under $prefix"
    rm -rf "$prefix"
    mkdir -p "$(dirname "$prefix")"
    mv "$work/stage$prefix" "$prefix"
}

main() {
    local repo archive prefix stamp actual start
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    archive="${1:-${HYBRID_POCL_ARCHIVE:-$repo/../shared/vendor/pocl-$POCL_VERSION.tar.gz}}"
    prefix="${XDG_CACHE_HOME:-$HOME/.cache}/hybrid/pocl-$POCL_VERSION"
    stamp="$prefix/hybrid-build.stamp"

    [ -f "$archive" ] || fail "source archive '$archive' not found; pass its path as the first argument or set HYBRID_POCL_ARCHIVE."
    archive="$(realpath "$archive")"
    actual=$(sha256sum "$archive" | cut -d' ' -f1)
    [ "$actual" = "$POCL_SHA256" ] || fail "'$archive' has SHA-256 $actual, expected $POCL_SHA256 (PoCL $POCL_VERSION); refusing to build it."

    install_packages

    if [ -f "$stamp" ] && [ -f "$prefix/etc/OpenCL/vendors/pocl.icd" ] && [ -f "$prefix/lib/libpocl.so" ] \
        && [ "$(cat "$stamp")" = "$(expected_stamp)" ]; then
        echo "pocl: PoCL $POCL_VERSION is already built in $prefix (nothing to do)"
        return 0
    fi

    start=$(date +%s)
    work=$(mktemp -d "${TMPDIR:-/tmp}/hybrid-pocl.XXXXXX")
    log="$work/build.log"
    keep_work=0
    trap '[ "$keep_work" = 1 ] || rm -rf "$work"' EXIT
    build "$archive" "$prefix" "$work"
    expected_stamp >"$stamp"
    echo "pocl: built and installed in $(( $(date +%s) - start )) s; ICD file $prefix/etc/OpenCL/vendors/pocl.icd"
}

# Everything runs from main, which bash reads whole before starting: editing this file during a build cannot change
# the running build.
main "$@"
exit
