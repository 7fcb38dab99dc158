#include "eval/prediction_shares.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

namespace cgm {
namespace {

// loss: the mean over every batch's terms; batch_mean_loss: the plain mean of the batch means
// (summed in batch order, as one process sums them).
void total_losses(PredictResult & r) {
    double sum = 0, terms = 0, means = 0;
    for (const BatchLoss & b : r.batches) {
        sum += b.mean * b.terms;
        terms += b.terms;
        means += b.mean;
    }
    r.loss            = terms > 0 ? sum / terms : 0.0;
    r.batch_mean_loss = r.batches.empty() ? 0.0 : means / static_cast<double>(r.batches.size());
}

// This rank's share as MessagePack (raw bytes for text and the log's tensors, NaN kept as NaN).
std::string pack(const PredictResult & r, const GateLog * log, const std::map<std::string, size_t> & before,
                 const std::vector<std::vector<int64_t> *> & columns) {
    nlohmann::json j;
    j["predictions"] = nlohmann::json::array();
    for (const Prediction & p : r.predictions) {
        j["predictions"].push_back({ p.id, p.domain, p.target, p.predicted, p.correct, p.choice_scores });
    }
    j["batches"] = nlohmann::json::array();
    for (const BatchLoss & b : r.batches) {
        j["batches"].push_back({ b.mean, b.terms });
    }
    j["seconds"] = r.seconds;
    j["columns"] = nlohmann::json::array();
    for (const auto * c : columns) {
        j["columns"].push_back(*c);
    }
    std::vector<uint8_t> data;
    j["log"] = nlohmann::json::object();
    if (log != nullptr) {
        for (const auto & [module, rows] : log->batches) {
            const size_t from = before.count(module) ? before.at(module) : 0;
            if (rows.size() <= from) {
                continue;
            }
            const at::Tensor t = at::cat(std::vector<at::Tensor>(rows.begin() + static_cast<std::ptrdiff_t>(from), rows.end()), 0).contiguous();
            j["log"][module] = { { "shape", t.sizes().vec() }, { "dtype", static_cast<int>(t.scalar_type()) },
                                 { "offset", data.size() }, { "bytes", t.nbytes() } };
            const auto * bytes = static_cast<const uint8_t *>(t.data_ptr());
            data.insert(data.end(), bytes, bytes + t.nbytes());
        }
    }
    j["data"] = nlohmann::json::binary(std::move(data));
    const std::vector<uint8_t> packed = nlohmann::json::to_msgpack(j);
    return std::string(packed.begin(), packed.end());
}

}  // namespace

std::map<std::string, size_t> log_sizes(const GateLog * log) {
    std::map<std::string, size_t> sizes;
    if (log != nullptr) {
        for (const auto & [module, rows] : log->batches) {
            sizes[module] = rows.size();
        }
    }
    return sizes;
}

void join_shares(PredictResult & result, GateLog * log, const std::map<std::string, size_t> & log_before,
                 const std::vector<std::vector<int64_t> *> & columns) {
    if (dist::size() > 1) {
        const std::vector<std::string> shares = dist::all_gather(pack(result, log, log_before, columns));
        PredictResult                  all;
        for (auto * c : columns) {
            c->clear();
        }
        std::map<std::string, std::vector<at::Tensor>> rows;  // the log's new rows, by module, in rank order
        for (const std::string & share : shares) {
            const nlohmann::json j    = nlohmann::json::from_msgpack(share);
            const auto &         data = j.at("data").get_binary();
            for (const auto & p : j.at("predictions")) {
                all.predictions.push_back({ p[0], p[1], p[2], p[3], p[4].get<bool>(), p[5].get<std::vector<double>>() });
            }
            for (const auto & b : j.at("batches")) {
                all.batches.push_back({ b[0].get<double>(), b[1].get<double>() });
            }
            all.seconds = std::max(all.seconds, j.at("seconds").get<double>());
            for (size_t c = 0; c < columns.size(); ++c) {
                const auto values = j.at("columns")[c].get<std::vector<int64_t>>();
                columns[c]->insert(columns[c]->end(), values.begin(), values.end());
            }
            for (const auto & [module, t] : j.at("log").items()) {
                at::Tensor tensor = at::empty(t.at("shape").get<std::vector<int64_t>>(),
                                              static_cast<c10::ScalarType>(t.at("dtype").get<int>()));
                std::memcpy(tensor.data_ptr(), data.data() + t.at("offset").get<size_t>(), t.at("bytes").get<size_t>());
                rows[module].push_back(tensor);
            }
        }
        if (log != nullptr) {
            for (auto & [module, kept] : log->batches) {
                const size_t from = log_before.count(module) ? log_before.at(module) : 0;
                kept.resize(std::min(kept.size(), from));
            }
            for (auto & [module, tensors] : rows) {
                auto & kept = log->batches[module];
                kept.insert(kept.end(), tensors.begin(), tensors.end());
            }
        }
        result = std::move(all);
    }
    total_losses(result);
}

}  // namespace cgm
