#!/usr/bin/env bash
# The single-expert text workflow end to end on tiny data, checking what each step writes:
# prepare-data (wordnet) -> save-base (tiny random T5 + the fixture tokenizer) -> lora-finetune
# -> evaluate; finetune -> evaluate; --resume; and bad input failing with one clear line.
bin=$1
src=$2
source "$(dirname "$0")/smoke_lib.sh"

"$bin/prepare-data" --format wordnet --out "$work/data" --limit 40 --seed 3 "${common[@]}"
expect_files "$work"/data/{train,val,test}.jsonl "$work/data/dataset.json"
grep -q '"antonym"' "$work/data/dataset.json" || fail "dataset.json lacks the antonym domain"

"$bin/save-base" --init-config "$src/configs/t5-tiny.json" --tokenizer "$src/test/fixtures/hf/t5_tokenizer/tokenizer" \
  --out "$work/base" --seed 1 "${common[@]}"
expect_files "$work"/base/{config.json,model.safetensors,spiece.model}

train_args=(--train "$work/data/train.jsonl" --val "$work/data/val.jsonl" --batch-size 8 --max-target-len 8
            --val-scoring rank "${common[@]}")
"$bin/lora-finetune" --base "$work/base" --out "$work/lora" --steps 4 --eval-every 2 --targets q,v,wo "${train_args[@]}"
expect_files "$work"/lora/{adapter_config.json,adapter_model.safetensors,trainer_state.json,metrics.csv,curves.png}
grep -q '"finished": true' "$work/lora/trainer_state.json" || fail "trainer_state.json not finished"
[ "$(wc -l < "$work/lora/metrics.csv")" -eq 3 ] || fail "metrics.csv should have a header and 2 evaluations"
grep -q '"target_modules"' "$work/lora/adapter_config.json" || fail "adapter_config.json is not PEFT's"
"$bin/lora-finetune" --base "$work/base" --out "$work/lora" --steps 4 --eval-every 2 --targets q,v,wo --resume \
  "${train_args[@]}" | grep -q "at step" || fail "resume of a finished run"

n_test=$(wc -l < "$work/data/test.jsonl")
for scoring in rank generate teacher-forced; do
  "$bin/evaluate" --model "$work/lora" --data "$work/data/test.jsonl" --out "$work/eval-$scoring" --scoring "$scoring" \
    --max-target-len 8 "${common[@]}" > /dev/null
  expect_files "$work/eval-$scoring"/{predictions.csv,metrics.json}
  [ "$(wc -l < "$work/eval-$scoring/predictions.csv")" -eq $((n_test + 1)) ] || fail "predictions.csv rows ($scoring)"
  head -1 "$work/eval-$scoring/predictions.csv" | grep -qx "id,domain,target,predicted,correct" || fail "predictions.csv header"
  grep -q '"per_domain"' "$work/eval-$scoring/metrics.json" || fail "metrics.json per_domain ($scoring)"
done

"$bin/finetune" --base "$work/base" --out "$work/full" --steps 2 "${train_args[@]}"
expect_files "$work"/full/{config.json,model.safetensors,spiece.model,trainer_state.json,metrics.csv}
"$bin/evaluate" --model "$work/full" --data "$work/data/val.jsonl" --out "$work/eval-full" --scoring rank "${common[@]}" > /dev/null
expect_files "$work/eval-full/metrics.json"

# Bad input: one line naming the file and the problem, nothing written.
printf '{"question":"q","choices":["a","b"],"label":0}\n{broken\n' > "$work/raw.jsonl"
"$bin/prepare-data" --format mcq-jsonl --input "$work/raw.jsonl" --out "$work/raw-out" "${common[@]}" > /dev/null
grep -q '"count": 1' "$work/raw-out/dataset.json" || fail "bad record not counted in dataset.json"
expect_error "$work/raw.jsonl:2: malformed JSON" \
  "$bin/prepare-data" --format mcq-jsonl --input "$work/raw.jsonl" --out "$work/strict-out" --strict "${common[@]}"
[ ! -e "$work/strict-out" ] || fail "strict failure left an output folder"
head -1 "$work/data/test.jsonl" > "$work/split.jsonl"
echo '{"id":"x","domain":"d","question":"q","choices":["a","b"],"label":5}' >> "$work/split.jsonl"
expect_error "$work/split.jsonl:2: label 5 out of range" \
  "$bin/evaluate" --model "$work/lora" --data "$work/split.jsonl" --out "$work/eval-bad" "${common[@]}"
[ ! -e "$work/eval-bad" ] || fail "failed evaluate left an output folder"
expect_error "has no tokenizer" \
  "$bin/lora-finetune" --base "$src/test/fixtures/hf/t5_relu/model" --out "$work/no-tok" --steps 1 "${train_args[@]}"
expect_error "--targets" \
  "$bin/lora-finetune" --base "$work/base" --out "$work/no-targets" --steps 1 --targets nothing "${train_args[@]}"
echo "text pipeline smoke: all steps wrote their files"
