#include "text/seq2seq_data.h"

#include <ATen/ops/full.h>

namespace cgm {
namespace {

// Keeps at most max_len ids, EOS last, as the tokenizer's truncation does.
std::vector<int64_t> truncate(std::vector<int64_t> ids, int64_t max_len, int64_t eos) {
    if (max_len > 0 && static_cast<int64_t>(ids.size()) > max_len) {
        ids.resize(static_cast<size_t>(max_len));
        ids.back() = eos;
    }
    return ids;
}

}  // namespace

std::vector<Seq2SeqExample> tokenize_records(const T5Tokenizer & tokenizer, const std::vector<McqRecord> & records,
                                             const TextSetup & setup) {
    std::vector<Seq2SeqExample> out;
    out.reserve(records.size());
    for (const auto & r : records) {
        Seq2SeqExample e;
        e.source = truncate(tokenizer.encode(render_prompt(r, setup.prompt)), setup.max_source_len, tokenizer.eos_id());
        if (r.label >= 0) {
            e.target = truncate(tokenizer.encode(render_target(r, setup.prompt, setup.target)), setup.max_target_len,
                                tokenizer.eos_id());
        }
        out.push_back(std::move(e));
    }
    return out;
}

at::Tensor pad_rows(const std::vector<std::vector<int64_t>> & rows, int64_t pad, size_t width) {
    for (const auto & r : rows) {
        width = std::max(width, r.size());
    }
    at::Tensor out = at::full({ static_cast<int64_t>(rows.size()), static_cast<int64_t>(width) }, pad, at::kLong);
    auto       acc = out.accessor<int64_t, 2>();
    for (size_t i = 0; i < rows.size(); ++i) {
        for (size_t j = 0; j < rows[i].size(); ++j) {
            acc[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = rows[i][j];
        }
    }
    return out;
}

Seq2SeqBatch make_batch(const std::vector<Seq2SeqExample> & examples, const std::vector<int64_t> & indices,
                        int64_t pad_id, const TextSetup & setup) {
    std::vector<std::vector<int64_t>> sources, targets, ones;
    for (const int64_t i : indices) {
        const auto & e = examples.at(static_cast<size_t>(i));
        sources.push_back(e.source);
        targets.push_back(e.target);
        ones.emplace_back(e.source.size(), 1);
    }
    const auto source_width = static_cast<size_t>(setup.pad_to_max_length ? setup.max_source_len : 1);
    const auto target_width = static_cast<size_t>(setup.pad_to_max_length ? setup.max_target_len : 1);
    const at::Tensor labels = pad_rows(targets, -100, target_width);  // [B, T]
    if (setup.loss_on_padding) {
        // Padding after each answer becomes pad tokens to predict, as the seed's labels have them.
        auto acc = labels.accessor<int64_t, 2>();
        for (size_t r = 0; r < targets.size(); ++r) {
            for (auto j = static_cast<int64_t>(targets[r].size()); !targets[r].empty() && j < labels.size(1); ++j) {
                acc[static_cast<int64_t>(r)][j] = pad_id;
            }
        }
    }
    return { pad_rows(sources, pad_id, source_width), pad_rows(ones, 0, source_width), labels };
}

}  // namespace cgm
