#pragma once
// Multiple-choice records turned into T5 token ids once, and padded batches of them.
#include "text/mcq.h"
#include "text/prompt.h"
#include "text/t5_tokenizer.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace cgm {

struct TextSetup {
    PromptStyle prompt         = PromptStyle::seed;
    TargetStyle target         = TargetStyle::text;
    int64_t     max_source_len = 512;
    int64_t     max_target_len = 64;
    // The seed's data handling, opt-in for fidelity: every source padded to max_source_len and
    // every target to max_target_len (padding="max_length"), and the padded target positions
    // counted in the loss (labels without -100).
    bool pad_to_max_length = false;
    bool loss_on_padding   = false;
};

struct Seq2SeqExample {
    std::vector<int64_t> source;  // prompt ids, EOS last
    std::vector<int64_t> target;  // answer ids, EOS last (empty for unlabeled records)
};

struct Seq2SeqBatch {
    at::Tensor input_ids;       // [B, S] int64, pad 0
    at::Tensor attention_mask;  // [B, S]
    at::Tensor labels;          // [B, T] int64, -100 on padding
};

std::vector<Seq2SeqExample> tokenize_records(const T5Tokenizer & tokenizer, const std::vector<McqRecord> & records,
                                             const TextSetup & setup);

// A batch of the examples at `indices`, padded to its longest rows or, with
// setup.pad_to_max_length, to the maximum lengths; labels -100 on padding unless
// setup.loss_on_padding (an unlabeled row stays all -100).
Seq2SeqBatch make_batch(const std::vector<Seq2SeqExample> & examples, const std::vector<int64_t> & indices,
                        int64_t pad_id, const TextSetup & setup = {});

// Pads rows of ids to one [N, max(width, longest row)] tensor with `pad`.
at::Tensor pad_rows(const std::vector<std::vector<int64_t>> & rows, int64_t pad, size_t width = 1);

}  // namespace cgm
