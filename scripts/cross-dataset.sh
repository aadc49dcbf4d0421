#!/usr/bin/env bash
# Cross-dataset protocols (docs/benchmarks.md, "Real recordings of other people"): what a model trained on some
# people's recordings scores on other people, microphones and rooms.
#   (a) fsdd-to-sc: train on FSDD (every speaker of FSDD_DIR, its official split) and evaluate on the digit words zero ...
#       nine of the Speech Commands folder SC_DIR (read as 0 ... 9 through --label-map): speakers the model never heard.
#   (b) sc35: train on SC_DIR's own speaker-disjoint lists, all 35 words; the test list's accuracy.
#   (c) fsdd+sc: train on FSDD and SC_DIR's training speakers together (--data twice, digits only), then the accuracy
#       on the digits of SC_DIR's test speakers (its testing_list) and on FSDD's official test part.
# Each protocol runs once per seed in SEEDS; every run's JSON is kept in OUT_DIR (reused when present: give changed
# settings a new OUT_DIR) and the last lines print each protocol's per-seed figures and their mean. Extra arguments
# after the seeds go to every `train` (e.g. --trim none to measure without trimming). With PEER=1 the PyTorch peer of
# scripts/baselines/logmel_cnn_torch.py runs (a) and (b) right after Hybrid at each seed, on the same files, so both
# are measured on the same machine under the same load. PROTOCOLS chooses among a, b and c (default "a b c").
# Usage: scripts/cross-dataset.sh FSDD_DIR SC_DIR OUT_DIR "SEEDS" [TRAIN ARGS...]
#   e.g. scripts/cross-dataset.sh ../shared/data/fsdd ../shared/data/speech-commands-dev /tmp/xd "0 1 2"
# Needs the CLI built (dotnet fsi build.fsx build); HYBRID_CLI overrides the command (default: dotnet src/Cli/bin/Release/net10.0/hybrid.dll).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
fsdd=$(realpath "$1"); sc=$(realpath "$2"); out=$3; seeds=$4; shift 4
extra=("$@")
cli=${HYBRID_CLI:-"dotnet $(dirname "$0")/../src/Cli/bin/Release/net10.0/hybrid.dll"}
peer="/usr/bin/python3 $(dirname "$0")/baselines/logmel_cnn_torch.py"
protocols=${PROTOCOLS:-"a b c"}
[[ "$seeds" =~ ^[0-9]+( [0-9]+)*$ ]] || { echo "cross-dataset: SEEDS must be seeds separated by spaces, got '$seeds'" >&2; exit 2; }
mkdir -p "$out"
digits=zero=0,one=1,two=2,three=3,four=4,five=5,six=6,seven=7,eight=8,nine=9
classes=0,1,2,3,4,5,6,7,8,9
# The figure an expression over `d` (the JSON object on a file's last line: train --json and evaluate --json) gives.
field() { python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(eval(sys.argv[2]))" "$1" "$2"; }
run() {  # run NAME COMMAND...: keeps the command's standard output in NAME.json, its errors in NAME.log
  local f="$out/$1.json"; shift
  [ -s "$f" ] || { "$@" > "$f.tmp" 2> "${f%.json}.log" && mv "$f.tmp" "$f"; } || { echo "cross-dataset: $(basename "$f" .json) failed (see ${f%.json}.log)" >&2; exit 1; }
}
for seed in $seeds; do
  if [[ " $protocols " == *" a "* ]]; then
    [ -s "$out/a-train-$seed.json" ] || rm -rf "$out/runs/a-$seed"  # an unfinished run: train refuses a used --out
    run "a-train-$seed" $cli train --data "$fsdd" --seed "$seed" "${extra[@]}" --no-plots --json --out "$out/runs/a-$seed"
    run "a-$seed" $cli evaluate --model "$out/runs/a-$seed/model.hnn" --data "$sc" --label-map "$digits" --labels "$classes" --json
    [ "${PEER:-0}" = 1 ] && run "a-peer-$seed" nice -n 10 $peer fsdd-to-sc "$fsdd" "$sc" --seed "$seed"
  fi
  if [[ " $protocols " == *" b "* ]]; then
    [ -s "$out/b-$seed.json" ] || rm -rf "$out/runs/b-$seed"
    run "b-$seed" $cli train --data "$sc" --seed "$seed" "${extra[@]}" --no-plots --json --out "$out/runs/b-$seed"
    [ "${PEER:-0}" = 1 ] && run "b-peer-$seed" nice -n 10 $peer sc35 "$sc" --seed "$seed"
  fi
  if [[ " $protocols " == *" c "* ]]; then
    [ -s "$out/c-train-$seed.json" ] || rm -rf "$out/runs/c-$seed"
    run "c-train-$seed" $cli train --data "$fsdd" --data "$sc" --label-map "$digits" --labels "$classes" --seed "$seed" "${extra[@]}" --no-plots --json --out "$out/runs/c-$seed"
    run "c-$seed" $cli evaluate --model "$out/runs/c-$seed/model.hnn" --data "$sc" --label-map "$digits" --labels "$classes" --part test --json
  fi
done
summary() {  # summary LABEL FILE-PREFIX PYTHON-EXPRESSION: the figure per seed and the mean
  local label=$1 prefix=$2 expr=$3 values=()
  for seed in $seeds; do
    [ -s "$out/$prefix-$seed.json" ] && values+=("$(field "$out/$prefix-$seed.json" "$expr")")
  done
  [ ${#values[@]} -gt 0 ] && python3 -c "import sys; v=[float(x) for x in sys.argv[2:]]; print('%-34s %s  mean %.4f' % (sys.argv[1], ' '.join('%.4f' % x for x in v), sum(v) / len(v)))" "$label" "${values[@]}"
  return 0
}
summary "(a) FSDD -> SC digits" a "d['accuracy']"
summary "(a) FSDD official test" a-train "d['test_accuracy']"
summary "(a) PyTorch peer" a-peer "d['accuracy']"
summary "(b) SC 35 words, test list" b "d['test_accuracy']"
summary "(b) PyTorch peer" b-peer "d['accuracy']"
summary "(c) FSDD+SC -> SC test digits" c "d['accuracy']"
summary "(c) FSDD official test" c-train "[s for s in d['folds'][0]['per_source'] if s['source'] != '$(basename "$sc")'][0]['test_accuracy']"
