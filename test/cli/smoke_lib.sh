# Shared by the smoke scripts (sourced after setting $bin and $src): a scratch folder, quiet
# one-thread runs, the fixtures (found by kind in $CGM_FIXTURES_DIR/index.json), and checks.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
common=(--threads 1 --log-level warn)
fixtures=${CGM_FIXTURES_DIR:-$src/test/fixtures/hf}

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v jq > /dev/null || fail "jq is needed (scripts/install-deps installs it)"

# fixture_of_kind KIND: the name of the first fixture of that kind in index.json (empty if none).
fixture_of_kind() {
  jq -r --arg k "$1" '[to_entries[] | select(.value.kind == $k) | .key][0] // empty' "$fixtures/index.json"
}
# fixture_dir KIND MANIFEST_KEY DEFAULT: the folder a fixture of that kind names in its manifest.
fixture_dir() {
  local name
  name=$(fixture_of_kind "$1")
  [ -n "$name" ] || return 0
  echo "$fixtures/$name/$(jq -r --arg key "$2" --arg d "$3" '.[$key] // $d' "$fixtures/$name/manifest.json")"
}

# The tokenizer every tiny text base is built with, and a copy of configs/t5-tiny.json whose
# vocab_size is the tokenizer's size (sentencepiece pieces + extra ids). Scripts without text
# set SMOKE_TEXT=0 before sourcing this file.
if [ "${SMOKE_TEXT:-1}" = 1 ]; then
  tokenizer=$(fixture_dir t5_tokenizer tokenizer_dir tokenizer)
  if [ -z "$tokenizer" ]; then
    echo "SKIPPING $(basename "$0"): no fixture of kind t5_tokenizer in $fixtures"
    exit 0
  fi
  tok_manifest=$fixtures/$(fixture_of_kind t5_tokenizer)/manifest.json
  tok_size=$(jq -r '.vocab_size // empty' "$tok_manifest")
  if [ -z "$tok_size" ]; then
    tok_size=$(( $(spm_export_vocab --model="$tokenizer/spiece.model" | wc -l) + $(jq -r '.extra_ids // 100' "$tok_manifest") ))
  fi
  tiny_config=$src/configs/t5-tiny.json
  if [ "$(jq -r .vocab_size "$tiny_config")" != "$tok_size" ]; then
    jq --argjson v "$tok_size" '.vocab_size = $v' "$src/configs/t5-tiny.json" > "$work/t5-tiny.json"
    tiny_config=$work/t5-tiny.json
  fi
fi

expect_files() { for f in "$@"; do [ -s "$f" ] || fail "missing or empty: $f"; done; }
# expect_png FILE...: a real PNG image (its 8-byte signature), not an empty or text file.
expect_png() {
  for f in "$@"; do
    expect_files "$f"
    [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$f is not a PNG"
  done
}
# expect_error CODE "<text in stderr>" command...: exit code CODE (1 bad input, 2 bad flags) and
# exactly one line on stderr containing the text.
expect_error() {
  local code=$1 want=$2 rc=0
  shift 2
  "$@" > "$work/out" 2> "$work/err" || rc=$?
  [ "$rc" -eq "$code" ] || fail "expected exit code $code, got $rc: $* (stderr: $(cat "$work/err"))"
  grep -qF -- "$want" "$work/err" || fail "stderr lacks '$want': $(cat "$work/err")"
  [ "$(wc -l < "$work/err")" -eq 1 ] || fail "stderr is not one line: $(cat "$work/err")"
}
# expect_no_output DIR: a failed program left neither DIR nor a staging folder beside it.
expect_no_output() {
  [ ! -e "$1" ] || fail "a failed run left $1"
  ! compgen -G "$1.tmp-*" > /dev/null || fail "a failed run left a staging folder beside $1"
}

# data_rows FILE: lines after the CSV header.
data_rows() { echo $(( $(wc -l < "$1") - 1 )); }
# domains_of JSONL: the distinct domains of a prepare-data split, one a line, sorted.
domains_of() { jq -r .domain "$1" | sort -u; }
# safetensors_header FILE: the JSON header (after its 8-byte little-endian length).
safetensors_header() {
  local n
  n=$(head -c 8 "$1" | od -An -tu8 | tr -d ' ')
  head -c $((n + 8)) "$1" | tail -c +9  # (head closing a pipe early would fail under pipefail)
}
# safetensors_shape FILE TENSOR: the tensor's shape from the header, as JSON ([2,3]).
safetensors_shape() { safetensors_header "$1" | jq -c --arg t "$2" '.[$t].shape'; }

# same_predictions A B: two predictions.csv files with the same rows and texts, every score within
# 1e-5 (two equal computations batched or stacked differently round differently).
same_predictions() {
  [ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ] || return 1
  paste -d '\n' "$1" "$2" | awk -F, '
    NR % 2 == 1 { n = split($0, a, ","); next }
    { if (split($0, b, ",") != n) exit 1
      for (i = 1; i <= n; ++i)
        if (a[i] != b[i] && !(a[i] ~ /^-?[0-9.]+(e-?[0-9]+)?$/ && (a[i] - b[i] > 1e-5 || b[i] - a[i] > 1e-5) == 0)) exit 1 }'
}
# check_predictions DIR DATA: predictions.csv has the header (with a score_A, score_B, ... column per
# choice after rank scoring) and one row per record of DATA (in
# order, by id), and metrics.json's overall count/accuracy and per-domain counts agree with it.
check_predictions() {
  local dir=$1 data=$2 n
  expect_files "$dir/predictions.csv" "$dir/metrics.json"
  n=$(wc -l < "$data")
  head -1 "$dir/predictions.csv" | grep -qxE "id,domain,target,predicted,correct(,score_[A-Z]+)*" || fail "$dir/predictions.csv header"
  [ "$(data_rows "$dir/predictions.csv")" -eq "$n" ] || fail "$dir/predictions.csv has not $n rows"
  diff <(jq -r .id "$data") <(tail -n +2 "$dir/predictions.csv" | cut -d, -f1) > /dev/null ||
    fail "$dir/predictions.csv ids are not those of $data in order"
  jq -e '(.overall | has("accuracy") and has("substring_accuracy") and has("squad_em") and has("squad_f1") and has("count"))
         and has("per_domain") and has("model") and has("model_kind") and has("scoring") and has("loss")' \
    "$dir/metrics.json" > /dev/null || fail "$dir/metrics.json lacks a key"
  [ "$(jq .overall.count "$dir/metrics.json")" -eq "$n" ] || fail "$dir/metrics.json overall count"
  # accuracy = the share of rows whose column `correct` (the last before the score columns) is 1,
  # counted here from the csv (from the end: answer texts may hold commas)
  local acc scores
  scores=$(head -1 "$dir/predictions.csv" | tr ',' '\n' | grep -c '^score_' || true)  # 0 matches: exit 1
  acc=$(tail -n +2 "$dir/predictions.csv" |
    awk -F, -v s="$scores" '{ v = $(NF - s); c += (v == 1 || v == "true") } END { printf "%.6f", c / NR }')
  jq -e --argjson a "$acc" '(.overall.accuracy - $a) | fabs < 1e-4' "$dir/metrics.json" > /dev/null ||
    fail "$dir/metrics.json accuracy $(jq .overall.accuracy "$dir/metrics.json") is not the csv's $acc"
  diff <(jq -r .domain "$data" | sort | uniq -c | awk '{ print $2, $1 }') \
       <(jq -r '.per_domain | to_entries[] | "\(.key) \(.value.count)"' "$dir/metrics.json" | sort) > /dev/null ||
    fail "$dir/metrics.json per-domain counts are not those of $data"
}

# check_training_dir DIR STEPS EVAL_EVERY: what a finished training run writes besides its model:
# trainer_state.json (finished at STEPS), metrics.csv (a header and one row per evaluation),
# curves.png, and checkpoint/ holding exactly the checkpoint trainer_state.json names.
check_training_dir() {
  local dir=$1 steps=$2 every=$3 ckpt
  expect_files "$dir/trainer_state.json" "$dir/metrics.csv"
  expect_png "$dir/curves.png"
  jq -e --argjson s "$steps" '.finished == true and .step == $s' "$dir/trainer_state.json" > /dev/null ||
    fail "$dir/trainer_state.json is not finished at step $steps"
  [ "$(data_rows "$dir/metrics.csv")" -eq $(( (steps + every - 1) / every )) ] || fail "$dir/metrics.csv evaluations"
  head -1 "$dir/metrics.csv" | grep -qxE "step,epoch,train_loss,val_loss,val_accuracy,lr(,val_[a-z_]+)*" || fail "$dir/metrics.csv header"
  ckpt=$(jq -r .checkpoint "$dir/trainer_state.json")
  expect_files "$dir/$ckpt"
  [ "$(ls "$dir/checkpoint")" = "$(basename "$ckpt")" ] || fail "$dir/checkpoint holds more than $ckpt"
  # the trainable weights (param.*) and the optimizer state (the other tensors)
  safetensors_header "$dir/$ckpt" | jq -e 'del(.__metadata__) | keys | (map(select(startswith("param."))) | length > 0)
                                           and (map(select(startswith("param.") | not)) | length > 0)' > /dev/null ||
    fail "$dir/$ckpt lacks the weights or the optimizer state"
}
