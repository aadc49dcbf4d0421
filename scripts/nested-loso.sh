#!/usr/bin/env bash
# Nested leave-one-speaker-out on an FSDD folder: for each outer speaker, every candidate recipe is scored by plain
# LOSO over the other speakers only (inner; seed 0, or the mean over the seeds INNER_SEEDS lists, e.g. "0 1 2"), the
# best inner mean is chosen, and the outer speaker's accuracy is that of the chosen recipe trained on all other
# speakers (plain LOSO of it at each seed). Inner runs come first;
# plain LOSO is then run for the first candidate (the reference) and for every candidate some inner loop chose
# (ALL_PLAIN=1: every candidate), so a candidate never chosen costs only its inner runs. A candidate that is another
# build of Hybrid (a changed recipe) is run by that build when HYBRID_CLI_NAME names its command (NAME as given:
# letters, digits, underscores), for its inner runs and its plain LOSO alike. INNER_ONLY=1 stops after the inner runs.
# Results are kept as files in OUT_DIR under the candidate's name and reused by later runs: give a changed candidate
# a new name (or a new OUT_DIR).
# Usage: scripts/nested-loso.sh FSDD_DIR OUT_DIR "SEEDS" "NAME=ARGS" ["NAME=ARGS" ...]
#   e.g. scripts/nested-loso.sh ../shared/data/fsdd /tmp/nested "0 1 2" "default=" "epochs16=--epochs 16"
# Needs the CLI built (dotnet fsi build.fsx build); HYBRID_CLI overrides the command (default: dotnet src/Cli/bin/Release/net10.0/hybrid.dll).
set -euo pipefail
fsdd=$(realpath "$1"); out=$2; seeds=$3; shift 3
cli=${HYBRID_CLI:-"dotnet $(dirname "$0")/../src/Cli/bin/Release/net10.0/hybrid.dll"}
mkdir -p "$out"
speakers=$(ls "$fsdd/recordings" | sed -E 's/^[0-9]+_(.*)_[0-9]+\.wav$/\1/' | sort -u)
accuracy() { grep -o '"test_accuracy":[0-9.]*' "$1" | tail -1 | cut -d: -f2; }  # the run's figure: JSON keys are sorted, folds come first
speaker_accuracy() { grep -o "\"$2\":[0-9.]*" "$1" | tail -1 | cut -d: -f2; }
inner_seeds=${INNER_SEEDS:-0}
[[ "$inner_seeds" =~ ^[0-9]+( [0-9]+)*$ ]] || { echo "nested-loso: INNER_SEEDS must be seeds separated by spaces, got '$inner_seeds'" >&2; exit 2; }
declare -A args
for c in "$@"; do args[${c%%=*}]=${c#*=}; done
cli_of() { local v="HYBRID_CLI_$1"; echo "${!v:-$cli}"; }  # the command that runs candidate $1
check() {  # the accuracy in file $1, or stop naming the file
  local a; a=$(accuracy "$1"); [ -n "$a" ] || { echo "nested-loso: no test_accuracy in $1 (see ${1%.json}.log)" >&2; exit 1; }; echo "$a"
}
# Candidate order as given: the first is the reference (the default recipe), ties go to the earlier candidate.
names=()
for c in "$@"; do names+=("${c%%=*}"); done
plain() {  # plain LOSO of candidate $1 at seed $2 (all five outer folds), kept in plain-NAME-seedS.json
  local f="$out/plain-$1-seed$2.json"
  # An unfinished run's folder is cleared first: train refuses an --out that holds a run.
  [ -s "$f" ] || { rm -rf "$out/runs/plain-$1-$2"; $(cli_of "$1") train --data "$fsdd" --split loso --seed "$2" ${args[$1]} --no-plots --json --out "$out/runs/plain-$1-$2" > "$f" 2> "$out/plain-$1-seed$2.log"; }
}
# Inner selection per outer speaker (seed 0): LOSO over the remaining speakers, every candidate.
declare -A chosen
for outer in $speakers; do
  inner="$out/without-$outer"
  if [ ! -d "$inner/recordings" ]; then  # linked in a scratch folder, then renamed: never a partial set
    rm -rf "$inner.partial"; mkdir -p "$inner.partial/recordings"
    for w in "$fsdd"/recordings/*.wav; do
      case "$(basename "$w")" in *_"$outer"_*) ;; *) ln -s "$w" "$inner.partial/recordings/";; esac
    done
    mv "$inner.partial" "$inner"
  fi
  best=""; bestAcc=-1
  for name in "${names[@]}"; do
    sum=0; n=0
    for s in $inner_seeds; do
      tag="$outer-$name"; [ "$s" = 0 ] || tag="$outer-$name-seed$s"  # seed 0 keeps the name of single-seed runs
      f="$out/inner-$tag.json"
      [ -s "$f" ] || { rm -rf "$out/runs/inner-$tag"; $(cli_of "$name") train --data "$inner" --split loso --seed "$s" ${args[$name]} --no-plots --json --out "$out/runs/inner-$tag" > "$f" 2> "$out/inner-$tag.log"; }
      a=$(check "$f"); echo "inner without $outer, $name, seed $s: $a"
      sum=$(awk "BEGIN{print $sum + $a}"); n=$((n + 1))
    done
    a=$(awk "BEGIN{print $sum / $n}")
    [ "$n" = 1 ] || echo "inner without $outer, $name, mean over seeds $inner_seeds: $a"
    if awk "BEGIN{exit !($a > $bestAcc)}"; then best=$name; bestAcc=$a; fi
  done
  chosen[$outer]=$best
  echo "without $outer the inner loop chooses $best"
done
[ "${INNER_ONLY:-0}" = 1 ] && exit 0
# Outer scores: plain LOSO (seeds given) of the reference and of every candidate an inner loop chose; with
# ALL_PLAIN=1, of every candidate.
for name in "${names[@]}"; do
  use=${ALL_PLAIN:-0}; [ "$name" = "${names[0]}" ] && use=1
  for outer in $speakers; do [ "${chosen[$outer]}" = "$name" ] && use=1; done
  [ "$use" = 1 ] || continue
  for s in $seeds; do plain "$name" "$s"; a=$(check "$out/plain-$name-seed$s.json"); echo "plain $name seed $s: $a"; done
done
for outer in $speakers; do
  for s in $seeds; do
    echo "nested $outer seed $s: chose ${chosen[$outer]}, outer accuracy $(speaker_accuracy "$out/plain-${chosen[$outer]}-seed$s.json" "$outer")"
  done
done | tee "$out/nested.txt"
awk '/^nested/ { sum += $NF; n++ } END { if (n) printf "nested LOSO mean over %d speaker-seed pairs: %.4f\n", n, sum / n }' "$out/nested.txt"
