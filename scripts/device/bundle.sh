#!/usr/bin/env bash
# Prepares .devcarry/ (ignored by git) for a GPU machine lent through the device tool, which has no .NET and reaches
# no network: Release builds of the CLI and of the Dsp.Kernels tests, the .NET runtime they run on (host and
# Microsoft.NETCore.App), FSDD's recordings for the default `train` and the librosa/kymatio reference outputs for the
# parity tests, as xz tarballs. scripts/device/run.sh then runs issue 28's device checks there. Usage, from anywhere in
# the repository:
#   scripts/device/bundle.sh [FSDD_DIR [REFERENCE_DIR]]
# (defaults: $HYBRID_FSDD, else ../shared/data/fsdd; ../shared/reference).
# Then call the device tool with carry [".devcarry"] and the command `bash scripts/device/run.sh`.
# The bundle must stay under the tool's 64 MiB; the script stops (exit 1) if it does not.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fsdd=${1:-${HYBRID_FSDD:-$root/../shared/data/fsdd}}
reference=${2:-$root/../shared/reference}
[ -d "$fsdd/recordings" ] || { echo "bundle: no FSDD recordings under $fsdd (give FSDD_DIR)" >&2; exit 1; }
for ref in librosa-0.10.2 kymatio-0.4; do
  [ -d "$reference/$ref" ] || { echo "bundle: no $ref under $reference (give REFERENCE_DIR)" >&2; exit 1; }
done
out=.devcarry
rm -rf "$out"
mkdir -p "$out"
echo "bundle: building (Release)"
dotnet build src/Cli/Cli.fsproj -c Release -nologo -v q
dotnet build tests/Dsp.Kernels.Tests -c Release -nologo -v q
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(ls "$dotnet_root/shared/Microsoft.NETCore.App" | sort -V | tail -n 1)
echo "bundle: .NET runtime $runtime from $dotnet_root"
tar -C "$dotnet_root" -c dotnet host "shared/Microsoft.NETCore.App/$runtime" | xz -T0 -6 > "$out/dotnet.tar.xz"
# Managed assemblies, their configuration and the linux-x64 native libraries only (other platforms' are 500 MB).
pack() {  # pack DIR NAME
  (cd "$1" && find . -maxdepth 1 -type f \( -name '*.dll' -o -name '*.json' \) -print0 \
     | tar --null -T - -c $( [ -d runtimes/linux-x64 ] && echo runtimes/linux-x64 )) | xz -T0 -6 > "$out/$2.tar.xz"
}
pack src/Cli/bin/Release/net10.0 cli
pack tests/Dsp.Kernels.Tests/bin/Release/net10.0 tests
tar -C "$(dirname "$fsdd")" -c "$(basename "$fsdd")/recordings" | xz -T0 -6 > "$out/fsdd.tar.xz"
# librosa's and kymatio's reference outputs, so the parity lists run on cuda too.
tar -C "$reference" -c librosa-0.10.2 kymatio-0.4 | xz -T0 -6 > "$out/reference.tar.xz"
ls -l "$out"
total=$(du -sb "$out" | cut -f1)
# The tool also carries untracked files that git does not ignore.
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb | tail -n 1 | cut -f1)
echo "bundle: $((total / 1048576)) MiB in $out, $((tree / 1048576)) MiB of working tree (the device tool carries at most 64 MiB in all)"
[ $((total + tree)) -lt $((63 * 1048576)) ] || { echo "bundle: too large to carry" >&2; exit 1; }
