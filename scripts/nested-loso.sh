#!/usr/bin/env bash
# Nested leave-one-speaker-out on an FSDD folder: for each outer speaker, every candidate recipe is scored by plain
# LOSO over the other speakers only (inner, seed 0), the best inner mean is chosen, and the outer speaker's accuracy
# is that of the chosen recipe trained on all other speakers. Plain LOSO of every candidate (all seeds) is reported
# beside it. Usage: scripts/nested-loso.sh FSDD_DIR OUT_DIR "SEEDS" "NAME=ARGS" ["NAME=ARGS" ...]
#   e.g. scripts/nested-loso.sh ../shared/data/fsdd /tmp/nested "0 1 2" "default=" "epochs16=--epochs 16"
# Needs the CLI built (dotnet fsi build.fsx build); HYBRID_CLI overrides the command (default: dotnet src/Cli/bin/Release/net10.0/hybrid.dll).
set -euo pipefail
fsdd=$(realpath "$1"); out=$2; seeds=$3; shift 3
cli=${HYBRID_CLI:-"dotnet $(dirname "$0")/../src/Cli/bin/Release/net10.0/hybrid.dll"}
mkdir -p "$out"
speakers=$(ls "$fsdd/recordings" | sed -E 's/^[0-9]+_(.*)_[0-9]+\.wav$/\1/' | sort -u)
accuracy() { grep -o '"test_accuracy":[0-9.]*' "$1" | tail -1 | cut -d: -f2; }  # the run's figure: JSON keys are sorted, folds come first
speaker_accuracy() { grep -o "\"$2\":[0-9.]*" "$1" | tail -1 | cut -d: -f2; }
declare -A args
for c in "$@"; do args[${c%%=*}]=${c#*=}; done
# Plain LOSO of every candidate and seed (the outer scores of every candidate).
for name in "${!args[@]}"; do
  for s in $seeds; do
    f="$out/plain-$name-seed$s.json"
    [ -s "$f" ] || $cli train --data "$fsdd" --split loso --seed "$s" ${args[$name]} --no-plots --json --out "$out/runs/plain-$name-$s" > "$f" 2> "$out/plain-$name-seed$s.log"
    echo "plain $name seed $s: $(accuracy "$f")"
  done
done
# Inner selection per outer speaker (seed 0): LOSO over the remaining speakers.
for outer in $speakers; do
  inner="$out/without-$outer"
  if [ ! -d "$inner/recordings" ]; then
    mkdir -p "$inner/recordings"
    for w in "$fsdd"/recordings/*.wav; do
      case "$(basename "$w")" in *_"$outer"_*) ;; *) ln -s "$w" "$inner/recordings/";; esac
    done
  fi
  best=""; bestAcc=-1
  for name in "${!args[@]}"; do
    f="$out/inner-$outer-$name.json"
    [ -s "$f" ] || $cli train --data "$inner" --split loso --seed 0 ${args[$name]} --no-plots --json --out "$out/runs/inner-$outer-$name" > "$f" 2> "$out/inner-$outer-$name.log"
    a=$(accuracy "$f"); echo "inner without $outer, $name: $a"
    if awk "BEGIN{exit !($a > $bestAcc)}"; then best=$name; bestAcc=$a; fi
  done
  for s in $seeds; do
    echo "nested $outer seed $s: chose $best, outer accuracy $(speaker_accuracy "$out/plain-$best-seed$s.json" "$outer")"
  done
done | tee "$out/nested.txt"
awk '/^nested/ { sum += $NF; n++ } END { if (n) printf "nested LOSO mean over %d speaker-seed pairs: %.4f\n", n, sum / n }' "$out/nested.txt"
