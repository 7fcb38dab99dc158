#!/usr/bin/env bash
# `make paper-t5` and `make paper-beit` (scripts/paper-t5, scripts/paper-beit) end to end on tiny
# stand-ins: WordNet questions written in the raw CommonsenseQA, MedQA and ScienceQA formats with a
# tiny random T5, and two folders of small BMP images with a tiny BEiT, two training steps each.
# Checks that every call of the scripts runs with the seeds' settings and leaves what they promise.
bin=$1
src=$2
source "$(dirname "$0")/smoke_lib.sh"
build=$(dirname "$bin")

# --- T5: the three raw formats, from WordNet records ---
"$bin/prepare-data" --format wordnet --limit 30 --seed 3 --out "$work/wn" "${common[@]}" > /dev/null
letters='"ABCDEFGH"[$i:$i+1]'
raw=$work/raw
mkdir -p "$raw/csqa" "$raw/medqa" "$raw/sqa"
for s in train val; do
  csqa_file=$([ $s = train ] && echo train_rand_split || echo dev_rand_split)
  jq -c "{id, question: {stem: .question, choices: [.choices | to_entries[] | .key as \$i | {label: $letters, text: .value}]},
          answerKey: (.label as \$i | $letters)}" "$work/wn/$s.jsonl" > "$raw/csqa/$csqa_file.jsonl"
  jq -c "{question, options: ([.choices | to_entries[] | .key as \$i | {key: $letters, value}] | from_entries),
          answer_idx: (.label as \$i | $letters)}" "$work/wn/$s.jsonl" > "$raw/medqa/$([ $s = train ] && echo train || echo dev).jsonl"
done
jq -s 'map({key: .id, value: {question, choices, answer: .label, image: null, split: .split}}) | from_entries' \
  <(jq -c '. + {split: "train"}' "$work/wn/train.jsonl"; jq -c '. + {split: "val"}' "$work/wn/val.jsonl") \
  > "$raw/sqa/problems.json"
"$bin/save-base" --init-config "$tiny_config" --tokenizer "$tokenizer" --out "$work/t5" --seed 1 "${common[@]}" > /dev/null

out=$work/paper-t5
T5_MODEL=$work/t5 CSQA=$raw/csqa MEDQA=$raw/medqa SCIENCEQA=$raw/sqa/problems.json OUT=$out DEVICE=cpu THREADS=1 \
  TRAIN_FLAGS="--steps 2 --eval-every 2 --log-level warn" "$src/scripts/paper-t5" "$build" > "$work/paper-t5.log"
for d in commonsenseqa medqa scienceqa; do
  [ "$(jq '.counts.train' "$out/data/$d/dataset.json")" -eq "$(wc -l < "$work/wn/train.jsonl")" ] ||
    fail "paper-t5: $d's train split is not the raw train file"
  [ "$(jq -c '[.r, .lora_alpha, (.target_modules | sort)]' "$out/runs/lora-$d/adapter_config.json")" = '[16,1,["k","o","q","v"]]' ] ||
    fail "paper-t5: the $d expert is not the seed's r 16, alpha 1 on q,k,v,o"
done
jq -e '.settings | .padding == "max-length" and .["loss-on-padding"] == "true" and .["max-source-len"] == "512"' \
  "$out/runs/lora-medqa/run.json" > /dev/null || fail "paper-t5: the experts lack the seed's padding settings"
jq -e '.settings["per-file-limit"] == "256"' "$out/runs/lora-combined/run.json" > /dev/null ||
  fail "paper-t5: the combined LoRA is not on the first 256 of each set"
jq -e '.mix == "seed" and .gate_hidden == 4' "$out/runs/cgm/gate_config.json" > /dev/null ||
  fail "paper-t5: the gates are not the seed's (mix seed, hidden 4)"
for row in zero-shot commonsenseqa medqa scienceqa combined cgm; do
  grep -q "^| $row |" "$out/bench/results.md" || fail "paper-t5: benchmark has no row $row"
done
grep -q "rank acc." "$out/bench/results.md" || fail "paper-t5: teacher-forced figures without rank accuracy"
expect_png "$out/eval-cgm/routing.png"

# Without the data, a clear error before any work.
expect_error 2 "paper-t5: error: set T5_MODEL CSQA MEDQA SCIENCEQA" env -u T5_MODEL "$src/scripts/paper-t5" "$build"

# --- BEiT: two folders of 4 classes of 8x8 BMP images (a colour per class, noise per image) ---
# write_bmp FILE R G B SEED: an 8x8 24-bit BMP of one colour with a little noise.
write_bmp() {
  local f=$1 r=$2 g=$3 b=$4 seed=$5 y x
  {
    printf 'BM\xf6\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00'
    printf '\x08\x00\x00\x00\x08\x00\x00\x00\x01\x00\x18\x00\x00\x00\x00\x00\xc0\x00\x00\x00'
    printf '\x13\x0b\x00\x00\x13\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
    for y in 0 1 2 3 4 5 6 7; do
      for x in 0 1 2 3 4 5 6 7; do
        printf "\\x$(printf %02x $(( (b + (x * 7 + y * 13 + seed) % 32) % 256 )))"
        printf "\\x$(printf %02x $(( (g + (x * 5 + y * 3 + seed) % 32) % 256 )))"
        printf "\\x$(printf %02x $(( (r + (x * 11 + y + seed) % 32) % 256 )))"
      done
    done
  } > "$f"
}
colours=("200 20 20" "20 200 20" "20 20 200" "200 200 20")
for domain in fire game; do
  for c in 0 1 2 3; do
    class=$([ $domain = fire ] && echo "f$c" || echo "Game $c")
    mkdir -p "$raw/$domain/$class"
    for i in 0 1 2 3 4; do
      write_bmp "$raw/$domain/$class/img$i.bmp" ${colours[$c]} $((i * 17 + ${#domain}))
    done
  done
done
"$bin/save-base" --init-config "$src/configs/beit-tiny.json" --out "$work/beit" --seed 1 "${common[@]}" > /dev/null
size=$(jq .image_size "$work/beit/config.json")
out=$work/paper-beit
BEIT_MODEL=$work/beit FIRE=$raw/fire GAME=$raw/game FIRE_CLASSES=f0,f1,f2,f3 GAME_CLASSES="Game 0,Game 1,Game 2,Game 3" \
  PER_CLASS=5 IMAGE_SIZE=$size PROBE_EPOCHS=1 OUT=$out DEVICE=cpu THREADS=1 \
  TRAIN_FLAGS="--steps 2 --eval-every 2 --log-level warn" "$src/scripts/paper-beit" "$build" > "$work/paper-beit.log"
for d in fire game; do
  [ "$(jq '.counts.train + .counts.val + .counts.test' "$out/data/$d/dataset.json")" -eq 20 ] ||
    fail "paper-beit: $d does not hold 4 classes x PER_CLASS images"
  [ "$(jq -c '[.r, .lora_alpha, (.target_modules | sort)]' "$out/runs/lora-$d/adapter_config.json")" = \
    '[16,32,["classifier","dense","key","query","value"]]' ] || fail "paper-beit: the $d expert is not the seed's LoRA"
done
jq -e '.mix == "seed" and .gate_hidden == 4' "$out/runs/cgm/gate_config.json" > /dev/null ||
  fail "paper-beit: the gates are not the seed's (mix seed, hidden 4)"
for row in zero-shot fire game combined cgm; do
  grep -q "^| $row |" "$out/bench/results.md" || fail "paper-beit: benchmark has no row $row"
done
expect_png "$out/eval-cgm/routing.png" "$out/eval-cgm/confusion-fire.png"
echo "paper smoke: ok"
