#!/usr/bin/env bash
# The mixture workflow end to end on tiny data: two LoRA experts on two WordNet domains, a CGM
# gate over them, and evaluate, whose routing.csv must show each domain routed mostly to its
# own expert; plus the ablations (single experts, a static mixture, merging) and bad input.
bin=$1
src=$2
source "$(dirname "$0")/smoke_lib.sh"

for d in antonym hypernym; do
  "$bin/prepare-data" --format wordnet --out "$work/$d" --limit 1000 --seed 0 --domains "$d" "${common[@]}" > /dev/null
done
"$bin/prepare-data" --format wordnet --out "$work/both" --limit 1000 --seed 0 --domains antonym,hypernym "${common[@]}" > /dev/null
"$bin/save-base" --init-config "$src/configs/t5-tiny.json" --tokenizer "$src/test/fixtures/hf/t5_tokenizer/tokenizer" \
  --out "$work/base" --seed 1 "${common[@]}" > /dev/null

text=(--max-target-len 8 --val-scoring rank --batch-size 16)
for d in antonym hypernym; do
  "$bin/lora-finetune" --base "$work/base" --train "$work/$d/train.jsonl" --val "$work/$d/val.jsonl" --out "$work/expert-$d" \
    --steps 80 --eval-every 80 --lr 5e-3 --targets q,v,wo "${text[@]}" "${common[@]}"
done
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/cgm" --steps 400 --eval-every 400 --lr 1e-2 \
  --gate-hidden 16 "${text[@]}" "${common[@]}"
expect_files "$work"/cgm/{gate_config.json,gate.safetensors,trainer_state.json,metrics.csv}

"$bin/evaluate" --model "$work/cgm" --data "$work/both/test.jsonl" --out "$work/eval-cgm" --scoring rank --max-target-len 8 "${common[@]}"
expect_files "$work"/eval-cgm/{predictions.csv,metrics.json,gate_weights.safetensors,routing.csv,routing.png}
cat "$work/eval-cgm/routing.csv"
# domain,count,routing_accuracy,antonym,hypernym: each domain mostly on its own expert
awk -F, 'NR > 1 && $3 < 0.5 { bad = 1 } END { exit bad }' "$work/eval-cgm/routing.csv" || fail "a domain is not routed mostly to its own expert"

for e in antonym hypernym; do
  "$bin/evaluate" --model "$work/cgm" --experts-only "$e" --data "$work/both/test.jsonl" --out "$work/eval-$e" --scoring rank \
    --max-target-len 8 "${common[@]}"
done
"$bin/evaluate" --model "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --fixed-weights 0.5,0.5 --merge --data "$work/both/test.jsonl" --out "$work/eval-merged" --scoring rank --max-target-len 8 \
  "${common[@]}"
[ ! -e "$work/eval-merged/routing.csv" ] || fail "a static mixture has no routing"

# The seed's combined-data baseline: one LoRA on both domains (first 256 of each).
"$bin/lora-finetune" --base "$work/base" --train "$work/antonym/train.jsonl" --train "$work/hypernym/train.jsonl" \
  --per-file-limit 256 --val "$work/both/val.jsonl" --out "$work/combined" --steps 80 --eval-every 80 --lr 5e-3 \
  --targets q,v,wo "${text[@]}" "${common[@]}"
"$bin/evaluate" --model "$work/combined" --data "$work/both/test.jsonl" --out "$work/eval-combined" --scoring rank \
  --max-target-len 8 "${common[@]}"

# X-LoRA gating over the same experts: trains, saves in its folder layout, evaluates with routing.
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/xlora" --gate xlora --layerwise --top-k 1 \
  --steps 4 --eval-every 4 "${text[@]}" "${common[@]}"
grep -q '"gate": "xlora"' "$work/xlora/gate_config.json" || fail "gate_config.json of X-LoRA"
"$bin/evaluate" --model "$work/xlora" --data "$work/both/val.jsonl" --out "$work/eval-xlora" --scoring generate \
  --max-target-len 8 "${common[@]}" > /dev/null
expect_files "$work"/eval-xlora/{routing.csv,gate_weights.safetensors}

# Experts trained with the gates: saved in gate.safetensors and used by evaluate.
"$bin/cgm-train" --base "$work/base" --expert antonym="$work/expert-antonym" --expert hypernym="$work/expert-hypernym" \
  --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" --out "$work/cgm-experts" --steps 2 --train-experts \
  --mix seed "${text[@]}" "${common[@]}"
grep -q '"train_experts": true' "$work/cgm-experts/gate_config.json" || fail "gate_config.json lacks train_experts"
"$bin/evaluate" --model "$work/cgm-experts" --data "$work/both/val.jsonl" --out "$work/eval-experts" --scoring rank \
  --max-target-len 8 "${common[@]}" > /dev/null

expect_error "--expert: 'nothing' is not NAME=DIR" \
  "$bin/cgm-train" --base "$work/base" --expert nothing --train "$work/both/train.jsonl" --val "$work/both/val.jsonl" \
  --out "$work/cgm-bad" "${common[@]}"
cp -r "$work/cgm" "$work/cgm-broken"
head -c 100 "$work/cgm/gate.safetensors" > "$work/cgm-broken/gate.safetensors"
expect_error "$work/cgm-broken/gate.safetensors" \
  "$bin/evaluate" --model "$work/cgm-broken" --data "$work/both/test.jsonl" --out "$work/eval-broken" "${common[@]}"
[ ! -e "$work/eval-broken" ] || fail "failed evaluate left an output folder"
echo "cgm smoke: routed each domain to its own expert"
