#!/usr/bin/env bash
# The image workflow end to end on a Fashion-MNIST subset (Debian's dataset-fashion-mnist, installed
# by scripts/install-deps), checking what each step writes: two 4-class domains with the same label
# positions (clothes, gear) -> a tiny random BEiT (configs/beit-tiny.json) -> a LoRA per domain ->
# evaluate each on its own domain -> a CGM gate over both, and X-LoRA -> evaluate with routing; bad input fails
# with one clear line.
bin=$1
src=$2
SMOKE_TEXT=0
source "$(dirname "$0")/smoke_lib.sh"

mnist=/usr/share/datasets/fashion-mnist
if [ ! -e "$mnist/train-images-idx3-ubyte.gz" ]; then
  echo "SKIPPING $(basename "$0"): no Fashion-MNIST in $mnist (scripts/install-deps installs dataset-fashion-mnist)"
  exit 0
fi

declare -A classes=([clothes]=tshirt,trouser,pullover,dress [gear]=sandal,shirt,sneaker,bag)
for d in clothes gear; do
  "$bin/prepare-data" --format fashion-mnist --classes "${classes[$d]}" --per-class 200 --image-size 32 --seed 2 \
    --out "$work/$d" "${common[@]}" > /dev/null
  expect_files "$work/$d"/{train,val,test}.safetensors "$work/$d/dataset.json"
  [ "$(safetensors_shape "$work/$d/train.safetensors" images)" = "[480,32,32,3]" ] || fail "$d: train images are not [480,32,32,3]"
  [ "$(jq -c .classes "$work/$d/dataset.json")" = "$(echo "\"${classes[$d]}\"" | jq -c 'split(",")')" ] ||
    fail "$d: dataset.json lists other classes"
done

"$bin/save-base" --init-config "$src/configs/beit-tiny.json" --out "$work/base" --seed 1 "${common[@]}" > /dev/null
expect_files "$work"/base/{config.json,model.safetensors}

# The seed's linear probe: only the head trains; the backbone stays the base's.
"$bin/save-base" --init-config "$src/configs/beit-tiny.json" --out "$work/probe" --seed 1 --probe-epochs 3 \
  --probe-lr 5e-3 --train "$work/clothes/train.safetensors" --val "$work/clothes/val.safetensors" "${common[@]}" > /dev/null
expect_files "$work"/probe/{config.json,model.safetensors,trainer_state.json,metrics.csv}
jq -e '.best_metric > 0.4' "$work/probe/trainer_state.json" > /dev/null ||
  fail "the linear probe stays near chance: $(jq .best_metric "$work/probe/trainer_state.json")"
expect_error 1 "--probe-epochs: needs --train and --val image splits" "$bin/save-base" \
  --init-config "$src/configs/beit-tiny.json" --out "$work/bad-probe" --probe-epochs 1 "${common[@]}"
expect_no_output "$work/bad-probe"

# An expert per domain: LoRA on query, value and the head (so that a mixture can mix the heads too).
for d in clothes gear; do
  "$bin/lora-finetune" --base "$work/base" --train "$work/$d/train.safetensors" --val "$work/$d/val.safetensors" \
    --out "$work/lora-$d" --targets query,value,classifier --modules-to-save '' --steps 150 --batch-size 16 \
    --lr 5e-3 --eval-every 50 --seed 3 "${common[@]}" > /dev/null
  expect_files "$work/lora-$d"/{adapter_config.json,adapter_model.safetensors,metrics.csv,trainer_state.json}
  "$bin/evaluate" --model "$work/lora-$d" --data "$work/$d/test.safetensors" --out "$work/eval-$d" "${common[@]}" > /dev/null
  expect_files "$work/eval-$d"/{metrics.json,predictions.csv,confusion.csv}
  expect_png "$work/eval-$d/confusion.png"
  [ "$(data_rows "$work/eval-$d/predictions.csv")" -eq 160 ] || fail "eval-$d: predictions.csv lacks rows"
  jq -e '.overall.accuracy > 0.5' "$work/eval-$d/metrics.json" > /dev/null ||
    fail "expert $d is not well above chance (0.25) on its domain: $(jq .overall.accuracy "$work/eval-$d/metrics.json")"
  jq -e '.overall.per_class | length == 4' "$work/eval-$d/metrics.json" > /dev/null || fail "eval-$d: not 4 classes"
done

# The adapter with a saved head (PEFT's modules_to_save), the default for BEiT, loads and evaluates too.
"$bin/lora-finetune" --base "$work/base" --train "$work/clothes/train.safetensors" --val "$work/clothes/val.safetensors" \
  --out "$work/lora-head" --steps 20 --batch-size 16 "${common[@]}" > /dev/null
[ "$(jq -c .modules_to_save "$work/lora-head/adapter_config.json")" = '["classifier"]' ] || fail "lora-head: no saved head"
safetensors_header "$work/lora-head/adapter_model.safetensors" | jq -e 'has("base_model.model.classifier.weight")' > /dev/null ||
  fail "lora-head: the saved head is not in adapter_model.safetensors"

"$bin/cgm-train" --base "$work/base" --expert clothes="$work/lora-clothes" --expert gear="$work/lora-gear" \
  --train "$work"/{clothes,gear}/train.safetensors --val "$work"/{clothes,gear}/val.safetensors --out "$work/cgm" \
  --steps 100 --batch-size 16 --lr 3e-3 --seed 4 "${common[@]}" > /dev/null
expect_files "$work"/cgm/{gate_config.json,gate.safetensors}
# The gate's analytics in every validation: routing accuracy and mutual information within range.
awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i
                   if (!("val_routing_accuracy" in col) || !("val_expert_class_mi" in col)) exit 1; next }
  { r = $col["val_routing_accuracy"]; m = $col["val_expert_class_mi"]
    if (r == "" || r < 0 || r > 1 || m == "" || m < 0 || m > log(8)) exit 1 }' "$work/cgm/metrics.csv" ||
  fail "cgm metrics.csv lacks the gate's analytics: $(head -2 "$work/cgm/metrics.csv")"
"$bin/evaluate" --model "$work/cgm" --data "$work"/{clothes,gear}/test.safetensors --out "$work/eval-cgm" "${common[@]}" > /dev/null
expect_files "$work"/eval-cgm/{metrics.json,predictions.csv,routing.csv,confusion-clothes.csv,confusion-gear.csv}
expect_png "$work"/eval-cgm/{confusion-clothes.png,confusion-gear.png,routing.png}
[ "$(data_rows "$work/eval-cgm/predictions.csv")" -eq 320 ] || fail "eval-cgm: predictions.csv lacks rows"
jq -e '.per_domain | keys == ["clothes", "gear"]' "$work/eval-cgm/metrics.json" > /dev/null || fail "eval-cgm: domains"
# Gate analytics: the class x expert table holds every image under its domain/class, the per-domain
# statistics cover both domains, and the figures are within their ranges (ln 2 for 2 experts).
report=$work/eval-cgm/gate_report.json
expect_png "$work/eval-cgm/expert_class.png"
jq -e '(.overall.count == 320) and (.per_domain | keys == ["clothes", "gear"]) and
       ([.expert_class.counts[][]] | add == 320) and (.expert_class.classes | all(test("^(clothes|gear)/"))) and
       (.overall.mean_entropy >= 0 and .overall.mean_entropy <= 0.6932) and
       (.overall.kl_to_mean >= 0 and .overall.expert_class_mi >= 0 and .overall.expert_class_mi <= 2.0795)' "$report" > /dev/null ||
  fail "eval-cgm: gate_report.json is incomplete or out of range: $(jq -c .overall "$report")"
[ "$(head -1 "$work/eval-cgm/expert_class.csv")" = 'class\expert,clothes,gear' ] || fail "expert_class.csv header"

# X-LoRA over BEiT experts (peft's X-LoRA runs on causal language models only): trains, evaluates with routing.
"$bin/cgm-train" --base "$work/base" --gate xlora --xlora-size 16 --expert clothes="$work/lora-clothes" \
  --expert gear="$work/lora-gear" --train "$work"/{clothes,gear}/train.safetensors \
  --val "$work"/{clothes,gear}/val.safetensors --out "$work/xlora" --steps 20 --batch-size 16 --seed 5 "${common[@]}" > /dev/null
"$bin/evaluate" --model "$work/xlora" --data "$work"/{clothes,gear}/test.safetensors --out "$work/eval-xlora" "${common[@]}" > /dev/null
expect_files "$work"/eval-xlora/{metrics.json,predictions.csv,routing.csv}
[ "$(jq -r .model_kind "$work/eval-xlora/metrics.json")" = xlora ] || fail "eval-xlora: not an X-LoRA model"

# An output-level mixture (whole experts mixed by one gate on the base's pooled features, the
# importance penalty on): trains with the analytics, saves its settings, evaluates with routing.
"$bin/cgm-train" --base "$work/base" --mix output --gate-input base --importance 0.2 --temperature 2 \
  --temperature-decay 0.5 --expert clothes="$work/lora-clothes" --expert gear="$work/lora-gear" \
  --train "$work"/{clothes,gear}/train.safetensors --val "$work"/{clothes,gear}/val.safetensors --out "$work/output" \
  --epochs 3 --batch-size 32 --seed 6 "${common[@]}" > /dev/null
jq -e '.mix == "output" and .output.combiner == "expectation" and .output.gate_input == "base" and
       .output.importance == 0.2 and .output.temperature == 2 and .output.temperature_decay == 0.5 and
       .output.eval_temperature > 0 and .output.eval_temperature <= 2' \
  "$work/output/gate_config.json" > /dev/null || fail "output: gate_config.json: $(jq -c .output "$work/output/gate_config.json")"
safetensors_header "$work/output/gate.safetensors" | jq -e 'keys - ["__metadata__"] | length == 4 and all(startswith("output_gate."))' \
  > /dev/null || fail "output: gate.safetensors holds more than the output gate"
"$bin/evaluate" --model "$work/output" --data "$work"/{clothes,gear}/test.safetensors --out "$work/eval-output" "${common[@]}" > /dev/null
expect_files "$work"/eval-output/{metrics.json,predictions.csv,routing.csv,gate_report.json}
jq -e '.overall.count == 320' "$work/eval-output/gate_report.json" > /dev/null || fail "eval-output: gate_report.json count"

# benchmark over the same runs and data: the accuracies and macro-F1 evaluate reported, routing for the gates.
"$bin/benchmark" --zero-shot "$work/base" --run clothes="$work/lora-clothes" --run cgm="$work/cgm" --run xlora="$work/xlora" \
  --run output="$work/output" \
  --data "$work"/{clothes,gear}/test.safetensors --out "$work/bench" "${common[@]}" > "$work/bench.md"
expect_files "$work"/bench/{results.csv,results.md,predictions-cgm.csv}
grep -q '^| cgm | cgm |' "$work/bench.md" || fail "benchmark: no cgm row in the table: $(cat "$work/bench.md")"
column_of() { jq -Rr --arg run "$1" --arg col "$2" 'split(",") as $f | if $f[0] == "run" then ($f | index($col) | tostring) else empty end' \
  "$work/bench/results.csv" | head -1; }
result() { local c; c=$(column_of "$1" "$2"); [ -n "$c" ] && [ "$c" != null ] || fail "results.csv: no column $2"; awk -F, -v run="$1" -v c="$((c + 1))" '$1 == run { print $c }' "$work/bench/results.csv"; }
same() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' || fail "benchmark $3: $1, evaluate: $2"; }
for run in cgm xlora output; do
  same "$(result "$run" overall)" "$(jq .overall.accuracy "$work/eval-$run/metrics.json")" "$run overall"
  same "$(result "$run" macro_f1)" "$(jq .overall.macro_f1 "$work/eval-$run/metrics.json")" "$run macro-F1"
  same "$(result "$run" gear)" "$(jq .per_domain.gear.accuracy "$work/eval-$run/metrics.json")" "$run gear"
  [ -n "$(result "$run" routing_accuracy)" ] || fail "benchmark: no routing accuracy for $run"
done
[ -z "$(result clothes routing_accuracy)" ] || fail "benchmark: routing accuracy for a single LoRA"
[ "$(result zero-shot trainable_params)" = 0 ] || fail "benchmark: the zero-shot base trained parameters"

# Bad input: text data for an image model, a head that does not exist, experts with saved heads.
expect_error 1 "the model is an image model (BEiT)" "$bin/evaluate" --model "$work/lora-clothes" \
  --data "$work/clothes/dataset.json.jsonl" --out "$work/bad-eval" "${common[@]}"
expect_no_output "$work/bad-eval"
expect_error 1 "saves whole modules (modules_to_save" "$bin/cgm-train" --base "$work/base" \
  --expert a="$work/lora-head" --expert b="$work/lora-gear" --train "$work/gear/train.safetensors" \
  --val "$work/gear/val.safetensors" --out "$work/bad-cgm" "${common[@]}"
expect_no_output "$work/bad-cgm"
accuracy() { jq -r "$2 | .accuracy * 1000 | round / 1000" "$work/$1/metrics.json"; }
echo "image pipeline smoke: ok; test accuracy: experts clothes $(accuracy eval-clothes .overall)," \
  "gear $(accuracy eval-gear .overall); CGM clothes $(accuracy eval-cgm .per_domain.clothes)," \
  "gear $(accuracy eval-cgm .per_domain.gear); X-LoRA clothes $(accuracy eval-xlora .per_domain.clothes)," \
  "gear $(accuracy eval-xlora .per_domain.gear)"
