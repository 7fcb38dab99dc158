// Batches of token ids: padded to the longest rows (default) or, for seed fidelity, to the
// maximum lengths with the padded answer positions counted in the loss.
#include "text/seq2seq_data.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;

namespace {

at::Tensor ids(std::vector<std::vector<int64_t>> rows) {
    std::vector<at::Tensor> out;
    for (auto & r : rows) {
        out.push_back(at::tensor(r, at::kLong));
    }
    return at::stack(out);
}

}  // namespace

TEST_CASE("make_batch pads to the longest rows, or to the maximum lengths with the padding in the loss",
          "[unit][seq2seq]") {
    // Two labeled examples and an unlabeled one; pad id 0, EOS 1.
    const std::vector<Seq2SeqExample> examples = { { { 5, 6, 1 }, { 7, 1 } }, { { 8, 1 }, { 9, 9, 9, 1 } }, { { 4, 1 }, {} } };
    const std::vector<int64_t>        all      = { 0, 1, 2 };

    const Seq2SeqBatch longest = make_batch(examples, all, 0);
    CHECK(at::equal(longest.input_ids, ids({ { 5, 6, 1 }, { 8, 1, 0 }, { 4, 1, 0 } })));
    CHECK(at::equal(longest.attention_mask, ids({ { 1, 1, 1 }, { 1, 1, 0 }, { 1, 1, 0 } })));
    CHECK(at::equal(longest.labels, ids({ { 7, 1, -100, -100 }, { 9, 9, 9, 1 }, { -100, -100, -100, -100 } })));

    TextSetup seed;
    seed.max_source_len    = 5;
    seed.max_target_len    = 6;
    seed.pad_to_max_length = true;
    const Seq2SeqBatch padded = make_batch(examples, all, 0, seed);
    CHECK(at::equal(padded.input_ids, ids({ { 5, 6, 1, 0, 0 }, { 8, 1, 0, 0, 0 }, { 4, 1, 0, 0, 0 } })));
    CHECK(at::equal(padded.attention_mask, ids({ { 1, 1, 1, 0, 0 }, { 1, 1, 0, 0, 0 }, { 1, 1, 0, 0, 0 } })));
    CHECK(at::equal(padded.labels,
                    ids({ { 7, 1, -100, -100, -100, -100 }, { 9, 9, 9, 1, -100, -100 }, { -100, -100, -100, -100, -100, -100 } })));

    seed.loss_on_padding = true;  // the seed's labels: pads after the answer; an unlabeled row has none
    CHECK(at::equal(make_batch(examples, all, 0, seed).labels,
                    ids({ { 7, 1, 0, 0, 0, 0 }, { 9, 9, 9, 1, 0, 0 }, { -100, -100, -100, -100, -100, -100 } })));
    seed.pad_to_max_length = false;
    CHECK(at::equal(make_batch(examples, all, 0, seed).labels, ids({ { 7, 1, 0, 0 }, { 9, 9, 9, 1 }, { -100, -100, -100, -100 } })));
}
