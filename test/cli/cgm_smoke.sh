#!/usr/bin/env bash
# The mixture workflow end to end on tiny data: two LoRA experts on two WordNet domains, a CGM
# gate over them, and evaluate, whose routing.csv must route each domain above chance to its own
# expert; plus the ablations (single experts = their own LoRA, a static mixture merged = not
# merged), X-LoRA, and bad input (exit 1) and bad flags (exit 2).
bin=$1
src=$2
source "$(dirname "$0")/smoke_lib.sh"

experts=(antonym hypernym)
for d in "${experts[@]}"; do
  "$bin/prepare-data" --format wordnet --out "$work/$d" --limit 1000 --seed 0 --domains "$d" "${common[@]}" > /dev/null
done
"$bin/prepare-data" --format wordnet --out "$work/both" --limit 1000 --seed 0 --domains antonym,hypernym "${common[@]}" > /dev/null
"$bin/save-base" --init-config "$tiny_config" --tokenizer "$tokenizer" --out "$work/base" --seed 1 "${common[@]}" > /dev/null
test_data=$work/both/test.jsonl
n_test=$(wc -l < "$test_data")
[ "$(domains_of "$test_data" | tr '\n' ' ')" = "antonym hypernym " ] || fail "the test data lacks a domain"

text=(--max-target-len 8 --val-scoring rank --batch-size 16)
for d in "${experts[@]}"; do
  "$bin/lora-finetune" --base "$work/base" --train "$work/$d/train.jsonl" --val "$work/$d/val.jsonl" --out "$work/expert-$d" \
    --steps 80 --eval-every 80 --lr 5e-3 --targets q,v,wo "${text[@]}" "${common[@]}"
  expect_files "$work/expert-$d"/{adapter_config.json,adapter_model.safetensors}
  check_training_dir "$work/expert-$d" 80 80
done
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/cgm" --steps 400 --eval-every 400 --lr 1e-2 \
  --gate-hidden 16 "${text[@]}" "${common[@]}"
expect_files "$work"/cgm/{gate_config.json,gate.safetensors}
check_training_dir "$work/cgm" 400 400
[ "$(jq -r '[.experts[].name] | join(",")' "$work/cgm/gate_config.json")" = "antonym,hypernym" ] ||
  fail "gate_config.json does not name the experts in order"
# Every validation reports the gate's analytics: metrics.csv columns beside the fixed ones.
[ "$(head -1 "$work/cgm/metrics.csv")" = \
  "step,epoch,train_loss,val_loss,val_accuracy,lr,val_expert_class_mi,val_gate_entropy,val_gate_kl_to_mean,val_routing_accuracy" ] ||
  fail "cgm metrics.csv lacks the gate's columns: $(head -1 "$work/cgm/metrics.csv")"

"$bin/evaluate" --model "$work/cgm" --data "$test_data" --out "$work/eval-cgm" --scoring rank --max-target-len 8 "${common[@]}"
check_predictions "$work/eval-cgm" "$test_data"
expect_files "$work/eval-cgm/gate_weights.safetensors"
expect_png "$work/eval-cgm/routing.png"
shape=$(safetensors_shape "$work/eval-cgm/gate_weights.safetensors" gate_weights)
jq -e --argjson n "$n_test" --argjson e "${#experts[@]}" 'length == 3 and .[0] == $n and .[1] > 0 and .[2] == $e' <<< "$shape" \
  > /dev/null || fail "gate_weights.safetensors shape $shape is not [$n_test, modules, ${#experts[@]}]"

# routing.csv: domain,count,routing_accuracy,<one mean weight per expert>; one row per domain of
# the test data, counts summing to the test set, each domain routed to its own expert above
# chance (1/experts), and each row's weights summing to 1 (softmax).
routing=$work/eval-cgm/routing.csv
cat "$routing"
[ "$(head -1 "$routing")" = "domain,count,routing_accuracy,$(IFS=,; echo "${experts[*]}")" ] || fail "routing.csv header"
[ "$(data_rows "$routing")" -gt 0 ] || fail "routing.csv has no rows"
[ "$(tail -n +2 "$routing" | cut -d, -f1 | sort)" = "$(domains_of "$test_data")" ] ||
  fail "routing.csv rows are not the domains of the test data"
[ "$(tail -n +2 "$routing" | awk -F, '{ n += $2 } END { print n }')" -eq "$n_test" ] || fail "routing.csv counts do not sum to $n_test"
tail -n +2 "$routing" | awk -F, -v e="${#experts[@]}" '
  NF != 3 + e || $3 == "" || $3 + 0 <= 1 / e { bad = 1; print "routing below chance or malformed: " $0 > "/dev/stderr" }
  { s = 0; for (i = 4; i <= NF; ++i) s += $i; if (s < 0.999 || s > 1.001) { bad = 1; print "weights do not sum to 1: " $0 > "/dev/stderr" } }
  END { exit bad }' || fail "routing.csv: see above"

# Gate analytics for text: the class of a question is its domain, so the class x expert table has a
# row per domain summing to the test set, and a gate routing each domain to its own expert tells
# something about the domain (mutual information above 0).
expect_png "$work/eval-cgm/expert_class.png"
jq -e --argjson n "$n_test" '(.overall.count == $n) and (.expert_class.classes == ["antonym", "hypernym"]) and
       ([.expert_class.counts[][]] | add == $n) and (.overall.expert_class_mi > 0) and
       (.per_domain.antonym.expert_class_mi == 0)' "$work/eval-cgm/gate_report.json" > /dev/null ||
  fail "gate_report.json: $(jq -c '.overall, .expert_class' "$work/eval-cgm/gate_report.json")"

# A single expert of the gate folder predicts exactly what its own LoRA predicts.
for e in "${experts[@]}"; do
  "$bin/evaluate" --model "$work/cgm" --experts-only "$e" --data "$test_data" --out "$work/eval-only-$e" --scoring rank \
    --max-target-len 8 "${common[@]}" > /dev/null
  "$bin/evaluate" --model "$work/expert-$e" --data "$test_data" --out "$work/eval-lora-$e" --scoring rank \
    --max-target-len 8 "${common[@]}" > /dev/null
  check_predictions "$work/eval-only-$e" "$test_data"
  same_predictions "$work/eval-only-$e/predictions.csv" "$work/eval-lora-$e/predictions.csv" ||
    fail "--experts-only $e does not predict what expert-$e does"
  [ ! -e "$work/eval-only-$e/routing.csv" ] || fail "a single expert has no routing"
done
cmp -s "$work/eval-lora-antonym/predictions.csv" "$work/eval-lora-hypernym/predictions.csv" &&
  fail "the two experts predict the same: the comparison above proves nothing"

# A static mixture folded into the weights predicts what the same mixture as adapters does.
for m in merged unmerged; do
  "$bin/evaluate" --model "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
    --fixed-weights 0.5,0.5 $([ $m = merged ] && echo --merge) --data "$test_data" --out "$work/eval-$m" --scoring rank \
    --max-target-len 8 "${common[@]}" > /dev/null
  check_predictions "$work/eval-$m" "$test_data"
  [ ! -e "$work/eval-$m/routing.csv" ] || fail "a static mixture has no routing"
done
diff <(cut -d, -f4 "$work/eval-merged/predictions.csv") <(cut -d, -f4 "$work/eval-unmerged/predictions.csv") > /dev/null ||
  fail "the merged static mixture does not predict what the unmerged one does"
diff <(cut -d, -f4 "$work/eval-merged/predictions.csv") <(cut -d, -f4 "$work/eval-lora-antonym/predictions.csv") > /dev/null &&
  diff <(cut -d, -f4 "$work/eval-merged/predictions.csv") <(cut -d, -f4 "$work/eval-lora-hypernym/predictions.csv") > /dev/null &&
  fail "the 0.5/0.5 mixture predicts what each expert does: the comparison above proves nothing"

# The seed's combined-data baseline: one LoRA on both domains (first 256 of each).
"$bin/lora-finetune" --base "$work/base" --train "$work/antonym/train.jsonl" --train "$work/hypernym/train.jsonl" \
  --per-file-limit 256 --val "$work/both/val.jsonl" --out "$work/combined" --steps 80 --eval-every 80 --lr 5e-3 \
  --targets q,v,wo "${text[@]}" "${common[@]}"
check_training_dir "$work/combined" 80 80
"$bin/evaluate" --model "$work/combined" --data "$test_data" --out "$work/eval-combined" --scoring rank \
  --max-target-len 8 "${common[@]}"
check_predictions "$work/eval-combined" "$test_data"

# X-LoRA gating over the same experts: trains, saves in its folder layout, evaluates with routing.
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/xlora" --gate xlora --layerwise --top-k 1 \
  --steps 4 --eval-every 4 "${text[@]}" "${common[@]}"
grep -q '"gate": "xlora"' "$work/xlora/gate_config.json" || fail "gate_config.json of X-LoRA"
check_training_dir "$work/xlora" 4 4
n_val=$(wc -l < "$work/both/val.jsonl")
"$bin/evaluate" --model "$work/xlora" --data "$work/both/val.jsonl" --out "$work/eval-xlora" --scoring generate \
  --max-target-len 8 "${common[@]}" > /dev/null
check_predictions "$work/eval-xlora" "$work/both/val.jsonl"
expect_png "$work/eval-xlora/routing.png"
[ "$(jq -c '.[0], .[2]' <<< "$(safetensors_shape "$work/eval-xlora/gate_weights.safetensors" gate_weights)" | tr '\n' ' ')" = \
  "$n_val ${#experts[@]} " ] || fail "X-LoRA gate_weights.safetensors is not [$n_val, modules, ${#experts[@]}]"
[ "$(tail -n +2 "$work/eval-xlora/routing.csv" | cut -d, -f1 | sort)" = "$(domains_of "$work/both/val.jsonl")" ] ||
  fail "X-LoRA routing.csv rows are not the domains of the data"

# An output-level mixture of whole experts (top-2 of 2, the experts trained too, at two temperatures):
# trains, evaluates by generation (the mixed next-token distribution each step) and by ranking.
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/output" --mix output --combiner top-k --top-k 2 \
  --train-experts --dual-temperature --temperature 2 --steps 4 --eval-every 4 "${text[@]}" "${common[@]}"
check_training_dir "$work/output" 4 4
jq -e '.mix == "output" and .output.combiner == "top-k" and .output.top_k == 2 and .train_experts' \
  "$work/output/gate_config.json" > /dev/null || fail "gate_config.json of the output mixture"
for scoring in generate rank; do
  "$bin/evaluate" --model "$work/output" --data "$work/both/val.jsonl" --out "$work/eval-output-$scoring" --scoring "$scoring" \
    --max-target-len 8 "${common[@]}" > /dev/null
  check_predictions "$work/eval-output-$scoring" "$work/both/val.jsonl"
done
[ "$(tail -n +2 "$work/eval-output-rank/routing.csv" | cut -d, -f1 | sort)" = "$(domains_of "$work/both/val.jsonl")" ] ||
  fail "output mixture routing.csv rows are not the domains of the data"

# Experts trained with the gates: saved in gate.safetensors and used by evaluate.
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/cgm-experts" --steps 2 --train-experts \
  --mix seed "${text[@]}" "${common[@]}"
grep -q '"train_experts": true' "$work/cgm-experts/gate_config.json" || fail "gate_config.json lacks train_experts"
"$bin/evaluate" --model "$work/cgm-experts" --data "$work/both/val.jsonl" --out "$work/eval-experts" --scoring rank \
  --max-target-len 8 "${common[@]}" > /dev/null
check_predictions "$work/eval-experts" "$work/both/val.jsonl"
# A seed-mode gate averages over its batch: evaluation batches never span two data files' domains,
# so two files in one call score as each file alone (the seed evaluates each dataset apart).
for d in antonym hypernym; do
  "$bin/evaluate" --model "$work/cgm-experts" --data "$work/$d/val.jsonl" --out "$work/eval-seed-$d" --scoring rank \
    --eval-batch-size 7 --max-target-len 8 "${common[@]}" > /dev/null
done
"$bin/evaluate" --model "$work/cgm-experts" --data "$work"/{antonym,hypernym}/val.jsonl --out "$work/eval-seed-both" \
  --scoring rank --eval-batch-size 7 --max-target-len 8 "${common[@]}" > /dev/null
cmp -s <(tail -q -n +2 "$work"/eval-seed-{antonym,hypernym}/predictions.csv) <(tail -n +2 "$work/eval-seed-both/predictions.csv") ||
  fail "a seed-mode gate scored a data file differently beside another one (a batch spans two domains)"

# Bad input: exit 1, one line naming the flag or file, no output folder.
expect_error 1 "--expert: 'nothing' is not NAME=DIR" \
  "$bin/cgm-train" --base "$work/base" --expert nothing --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" \
  --out "$work/cgm-bad" "${common[@]}"
expect_no_output "$work/cgm-bad"
cp -r "$work/cgm" "$work/cgm-broken"
head -c 100 "$work/cgm/gate.safetensors" > "$work/cgm-broken/gate.safetensors"
expect_error 1 "$work/cgm-broken/gate.safetensors" \
  "$bin/evaluate" --model "$work/cgm-broken" --data "$test_data" --out "$work/eval-broken" "${common[@]}"
expect_no_output "$work/eval-broken"
expect_error 1 "--experts-only: no expert named 'synonym'" \
  "$bin/evaluate" --model "$work/cgm" --experts-only synonym --data "$test_data" --out "$work/eval-nosuch" "${common[@]}"
expect_no_output "$work/eval-nosuch"
expect_error 1 "--merge: needs --fixed-weights" \
  "$bin/evaluate" --model "$work/base" --merge --data "$test_data" --out "$work/eval-merge-alone" "${common[@]}"
expect_no_output "$work/eval-merge-alone"
# Bad flags: exit 2.
expect_error 2 "--gate" \
  "$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --gate moe --train "$work/both/train.jsonl" \
  --val "$work/both/val.jsonl" --out "$work/cgm-moe" "${common[@]}"
expect_no_output "$work/cgm-moe"
echo "cgm smoke: routed each domain to its own expert"
