#!/usr/bin/env bash
# Issue 28's checks on a lent GPU machine (16 cores, one NVIDIA GPU, no .NET, no network), from the bundle that
# scripts/device/bundle.sh made in .devcarry/. Run by the device tool in the repository root:
#   carry [".devcarry"], command `bash scripts/device/run.sh`, timeout_s 600.
# Steps, most important first, each under its own time limit, each writing $OUT/<step>.log (and JSON where named):
#   bench-cuda   `hybrid bench --device cuda` over every workload, train-cnn2d included   ($OUT/bench-cuda.json)
#   train-cuda   the default `hybrid train --device cuda` on FSDD                            ($OUT/train-cuda.json)
#   scaling      the managed sweep at 1..16 threads (COUNTS), with the per-operation profile of train-cnn2d
#                                                                                           ($OUT/scaling.json)
#   tests-cuda   the Dsp.Kernels tests, whose ILGPU lists add the cuda engine when a CUDA device is present
#   spin-off     W1 and W2 at 2 and 16 threads with the worker team's polling off (HYBRID_SPIN_US=0)   ($OUT/spin-off.json)
# A step that fails or runs out of time is reported and the next one still runs; the script's exit code is the
# number of failed steps (a step fails on its command's non-zero exit or its time limit, exit 124), 100 when the
# bundle is missing. COUNTS (default 1,2,4,8,16) and RUNS (default 3) change the sweep.
set -uo pipefail
out=${OUT:-/tmp/hybrid-device-out}
mkdir -p "$out"
carry=.devcarry
# Inside the repository, so that the tests find it (Hybrid.sln) above their binaries.
work=$PWD/$carry/work
rm -rf "$work"
trap 'rm -rf "$work"' EXIT  # a dry run here must not leave 250 MB for the next carry
for part in dotnet cli tests data reference; do
  mkdir -p "$work/$part"
  archive=$carry/$part.tar.xz
  [ $part = data ] && archive=$carry/fsdd.tar.xz
  xz -dc "$archive" | tar -C "$work/$part" -x || { echo "run: $archive missing or broken (run scripts/device/bundle.sh here first)"; exit 100; }
done
export DOTNET_ROOT="$work/dotnet" PATH="$work/dotnet:$PATH" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export HYBRID_FSDD=$(ls -d "$work"/data/*)
export HYBRID_LIBROSA_REFERENCE="$work/reference/librosa-0.10.2" HYBRID_KYMATIO_REFERENCE="$work/reference/kymatio-0.4"
hybrid="dotnet $work/cli/hybrid.dll"
failed=0
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2 start=$SECONDS code
  shift 2
  echo "== $name (limit ${limit} s, $(date -u +%T) UTC)"
  timeout -k 5 "$limit" "$@" > "$out/$name.log" 2>&1
  code=$?
  echo "== $name: exit $code after $((SECONDS - start)) s$([ $code = 124 ] && echo ' (time limit)')"
  tail -n 40 "$out/$name.log"
  [ $code = 0 ] || failed=$((failed + 1))
}
nvidia-smi -L 2>&1 || echo "run: nvidia-smi found no GPU"
echo "cores: $(nproc)"
step bench-cuda 120 $hybrid bench --device cuda --runs 5 --json "$out/bench-cuda.json"
step train-cuda 100 sh -c "$hybrid train --device cuda --no-plots --json --out $work/run-cuda > '$out/train-cuda.json'"
step scaling 180 env HYBRID_BENCH_PROFILE=1 $hybrid bench --threads "${COUNTS:-1,2,4,8,16}" --runs "${RUNS:-3}" --warmup 1 \
  --workload ceiling-compute ceiling-memory w1-logmel w1-mfcc w2-logmel rfft-256 train-cnn2d --json "$out/scaling.json"
step tests-cuda 130 dotnet "$work/tests/Hybrid.Dsp.Kernels.Tests.dll" --summary
# 764 tests run without a CUDA device (2026-12-08, with the 16-thread worker team test); the cuda lists add to that only when the engine could be created.
echo "tests: $(tail -n 1 "$out/tests-cuda.log") (764 passed without a CUDA device)"
# Last, since it is the least needed: the worker team's polling off, to set beside the sweep's 2 and 16 threads.
step spin-off 40 env HYBRID_SPIN_US=0 $hybrid bench --threads 2,16 --runs 3 --warmup 1 --workload w1-logmel w2-logmel \
  --json "$out/spin-off.json"
echo "run: $failed step(s) failed"
exit $failed
