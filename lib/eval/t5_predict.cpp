#include "eval/t5_predict.h"

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/prediction_shares.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

namespace cgm {
namespace {

std::vector<int64_t> row(const at::Tensor & ids_2d, int64_t i) {
    const at::Tensor r = ids_2d[i].contiguous().to(at::kCPU);
    return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

// Ids up to and including the first EOS.
std::vector<int64_t> cut_at_eos(std::vector<int64_t> ids, int64_t eos) {
    const auto it = std::find(ids.begin(), ids.end(), eos);
    if (it != ids.end()) {
        ids.erase(it + 1, ids.end());
    }
    return ids;
}

// For each record of the batch, the mean token log-likelihood of each of its choices, in choice order.
std::vector<std::vector<double>> rank_choices(const T5Model & model, const T5Tokenizer & tokenizer,
                                              const std::vector<const McqRecord *> & records,
                                              const Seq2SeqBatch & batch, const TextSetup & setup) {
    std::vector<int64_t>              owner;
    std::vector<std::vector<int64_t>> targets;
    for (size_t r = 0; r < records.size(); ++r) {
        for (size_t j = 0; j < records[r]->choices.size(); ++j) {
            owner.push_back(static_cast<int64_t>(r));
            std::vector<int64_t> ids =
                tokenizer.encode(render_target(*records[r], setup.prompt, setup.target, static_cast<int64_t>(j)));
            if (setup.max_target_len > 0 && static_cast<int64_t>(ids.size()) > setup.max_target_len) {
                ids.resize(static_cast<size_t>(setup.max_target_len));
            }
            targets.push_back(std::move(ids));
        }
    }
    const auto       device  = model.device();
    const at::Tensor rows    = at::tensor(owner, at::kLong).to(device);
    // Candidates reuse their record's encoder output, unless the encoder also routes per row
    // (X-LoRA's scalings): then each candidate is encoded with its prompt so the rows line up.
    const at::Tensor mask = batch.attention_mask.to(device).index_select(0, rows);  // [C, S]
    const at::Tensor enc  = model.has_output_mixture() ? at::Tensor()
                            : model.has_input_router()
                                ? model.encode(batch.input_ids.to(device).index_select(0, rows), mask)
                                : model.encode(batch.input_ids.to(device), batch.attention_mask.to(device)).index_select(0, rows);
    const at::Tensor labels  = pad_rows(targets, -100).to(device);                                  // [C, T]
    // An output mixture mixes whole passes: each candidate runs the model's forward with its prompt.
    const at::Tensor logits  = model.has_output_mixture()
                                   ? model.forward(batch.input_ids.to(device).index_select(0, rows), mask, model.shift_right(labels)).logits
                                   : model.lm_logits(model.decode(model.shift_right(labels), enc, mask));
    const at::Tensor logp    = at::log_softmax(logits, -1);                                         // [C, T, V]
    const at::Tensor valid   = labels.ne(-100);
    const at::Tensor token   = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid;  // [C, T]
    const at::Tensor score   = (token.sum(-1) / valid.sum(-1).clamp_min(1)).to(at::kCPU, at::kDouble).contiguous();  // [C]
    const double *   value   = score.data_ptr<double>();
    std::vector<std::vector<double>> scores;
    for (const McqRecord * r : records) {  // candidates are grouped by record, in choice order
        scores.emplace_back(value, value + r->choices.size());
        value += r->choices.size();
    }
    return scores;
}

// The first index of the highest score (NaN scores never win).
int64_t first_best(const std::vector<double> & scores) {
    int64_t best = 0;
    double  top  = -1e300;
    for (size_t j = 0; j < scores.size(); ++j) {
        if (scores[j] > top) {
            top  = scores[j];
            best = static_cast<int64_t>(j);
        }
    }
    return best;
}

}  // namespace

const std::vector<std::string> & scoring_names() {
    static const std::vector<std::string> names = { "generate", "rank", "teacher-forced" };
    return names;
}

Scoring parse_scoring(const std::string & name) {
    if (name == "generate") {
        return Scoring::generate;
    }
    if (name == "rank") {
        return Scoring::rank;
    }
    if (name == "teacher-forced") {
        return Scoring::teacher_forced;
    }
    fail("--scoring", "unknown scoring '" + name + "' (expected generate, rank or teacher-forced)");
}

PredictResult predict_mcq(const T5Model & model, const T5Tokenizer & tokenizer, const std::vector<McqRecord> & records,
                          const TextSetup & setup, Scoring scoring, int64_t batch_size, GateLog * gate_log) {
    c10::InferenceMode                no_autograd;
    const std::vector<Seq2SeqExample> examples = tokenize_records(tokenizer, records, setup);
    const auto                        device   = model.device();
    PredictResult                     result;
    const auto                        log_before = log_sizes(gate_log);
    for (const auto & [start, end] : rank_batches(records.size(), static_cast<size_t>(batch_size),
                                                  [&](size_t i) -> const std::string & { return records[i].domain; })) {
        std::vector<int64_t>           indices;
        std::vector<const McqRecord *> batch_records;
        for (size_t i = start; i < end; ++i) {
            indices.push_back(static_cast<int64_t>(i));
            batch_records.push_back(&records[i]);
        }
        const Seq2SeqBatch batch  = make_batch(examples, indices, tokenizer.pad_id(), setup);
        const at::Tensor   labels = batch.labels.to(device);
        const int64_t      tokens = labels.ne(-100).sum().item<int64_t>();
        if (gate_log != nullptr) {
            gate_log->enabled = true;
        }
        auto           started = std::chrono::steady_clock::now();
        const T5Output out     = model.forward(batch.input_ids.to(device), batch.attention_mask.to(device), {}, labels);
        const at::Tensor forced = out.logits.argmax(-1).to(at::kCPU);  // [B, T] argmax given the gold prefix
        if (gate_log != nullptr) {
            gate_log->enabled = false;
        }
        if (scoring != Scoring::teacher_forced) {
            started = std::chrono::steady_clock::now();  // the pass above only gives the loss and gate log
        }
        if (tokens > 0) {
            result.batches.push_back({ out.loss.item<double>(), static_cast<double>(tokens) });  // mean over the target tokens
        }
        std::vector<std::string>         texts(indices.size());
        std::vector<std::vector<double>> scores(indices.size());  // ranked scoring only
        if (scoring == Scoring::generate) {
            const T5Generation gen = model.generate(batch.input_ids.to(device), batch.attention_mask.to(device),
                                                    setup.max_target_len);
            for (size_t i = 0; i < indices.size(); ++i) {
                texts[i] = tokenizer.decode(row(gen.ids.to(at::kCPU), static_cast<int64_t>(i)));
            }
        } else if (scoring == Scoring::rank) {
            scores = rank_choices(model, tokenizer, batch_records, batch, setup);
            for (size_t i = 0; i < indices.size(); ++i) {
                texts[i] = render_target(*batch_records[i], setup.prompt, setup.target, first_best(scores[i]));
            }
        } else {
            for (size_t i = 0; i < indices.size(); ++i) {
                texts[i] = batch_records[i]->label < 0
                               ? std::string()
                               : tokenizer.decode(cut_at_eos(row(forced, static_cast<int64_t>(i)), tokenizer.eos_id()));
            }
        }
        result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        for (size_t i = 0; i < indices.size(); ++i) {
            const McqRecord & r = *batch_records[i];
            Prediction        p{ r.id, r.domain, "", texts[i], false, std::move(scores[i]) };
            if (r.label >= 0) {
                p.target  = render_target(r, setup.prompt, setup.target);
                p.correct = exact_match(p.predicted, p.target);
            }
            result.predictions.push_back(std::move(p));
        }
    }
    join_shares(result, gate_log, log_before);
    return result;
}

}  // namespace cgm
