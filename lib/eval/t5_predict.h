#pragma once
// Answers from a T5 model for multiple-choice records, in three ways:
//   generate:       greedy decoding with the KV cache (what a user of the model gets);
//   rank:           the choice whose target has the highest length-normalized log-likelihood
//                   (every choice's score is kept in Prediction::choice_scores);
//   teacher-forced: the seed's metric: argmax at each position given the gold prefix, cut at EOS.
#include "adapters/lora_mixture.h"
#include "eval/prediction.h"
#include "models/t5.h"
#include "text/seq2seq_data.h"

#include <string>
#include <vector>

namespace cgm {

enum class Scoring { generate, rank, teacher_forced };
Scoring parse_scoring(const std::string & name);  // one of scoring_names()
const std::vector<std::string> & scoring_names();  // "generate", "rank", "teacher-forced"

// PredictResult::loss is the mean teacher-forced loss. gate_log (optional) is enabled only around the teacher-forced pass over each batch, so it
// receives one row per record in record order, whatever the scoring.
PredictResult predict_mcq(const T5Model & model, const T5Tokenizer & tokenizer, const std::vector<McqRecord> & records,
                          const TextSetup & setup, Scoring scoring, int64_t batch_size, GateLog * gate_log = nullptr);

}  // namespace cgm
