#include "eval/long_input_case.h"

#include "adapters/lora.h"
#include "core/error.h"
#include "core/numbers.h"
#include "models/t5_flops.h"
#include "perf/peak_memory.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>

namespace cgm {
namespace {

constexpr int64_t kTarget = 8;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

nlohmann::json LongInputCase::to_json() const {
    return { { "config", config }, { "mode", mode }, { "task", task }, { "length", length } };
}

LongInputCase LongInputCase::from_json(const nlohmann::json & j) {
    LongInputCase c;
    c.config = j.at("config").get<std::string>();
    c.mode   = j.at("mode").get<std::string>();
    c.task   = j.at("task").get<std::string>();
    c.length = j.at("length").get<int64_t>();
    if (c.task != "forward" && c.task != "lora-step") {
        fail("--tasks", "'" + c.task + "' is not a task: forward or lora-step");
    }
    if (c.length < 1) {
        fail("--lengths", "a length must be positive");
    }
    run_options_of_mode(c.mode);
    return c;
}

T5RunOptions run_options_of_mode(const std::string & mode) {
    T5RunOptions run;
    if (mode == "dense") {
        return run;
    }
    const auto refuse = [&] { fail("--modes", "'" + mode + "' is not a mode: dense, chunk:C or chunk:C+topk:K (positive integers)"); };
    size_t     start  = 0;
    while (start <= mode.size()) {
        const size_t      end   = std::min(mode.find('+', start), mode.size());
        const std::string part  = mode.substr(start, end - start);
        const size_t      colon = part.find(':');
        if (colon == std::string::npos) {
            refuse();
        }
        const std::string           key = part.substr(0, colon);
        const std::optional<double> n   = parse_number(part.substr(colon + 1));
        if (!n.has_value() || n.value() < 1 || n.value() != std::floor(n.value()) || (key != "chunk" && key != "topk")) {
            refuse();
        }
        (key == "chunk" ? run.q_chunk : run.attn_topk) = static_cast<int64_t>(n.value());
        start = end + 1;
    }
    return run;
}

std::string mode_title(const std::string & mode) {
    const T5RunOptions run = run_options_of_mode(mode);
    std::string        title;
    if (run.q_chunk > 0) {
        title = "q-chunk " + std::to_string(run.q_chunk);
    }
    if (run.attn_topk > 0) {
        title += (title.empty() ? "" : ", ") + std::string("top-k ") + std::to_string(run.attn_topk);
    }
    return title.empty() ? "dense" : title;
}

LongInputTiming measure_long_input(const LongInputCase & c) {
    const T5Config config = T5Config::read(c.config);
    T5Model        model  = T5Model::random(config, 0);
    model.options()       = run_options_of_mode(c.mode);
    at::manual_seed(0);
    const at::Tensor ids    = at::randint(2, config.vocab_size, { 1, c.length }, at::kLong);  // [1, S]
    const at::Tensor labels = at::randint(2, config.vocab_size, { 1, kTarget }, at::kLong);   // [1, 8]

    std::function<void(int64_t)> iteration;  // one repetition over the first n source tokens
    LongInputTiming              timing;
    std::optional<LoraAdapter>   lora;
    std::optional<AdamW>         optimizer;
    if (c.task == "forward") {
        iteration = [&](int64_t n) {
            c10::InferenceMode no_autograd;
            const at::Tensor   part = ids.narrow(1, 0, n);
            model.forward(part, at::ones_like(part), {}, labels).loss.item<float>();
        };
        timing.flops = t5_forward_flops(config, 1, c.length, kTarget);
    } else {
        lora.emplace(create_lora(model.linear_modules(), LoraConfig{}, 0));
        attach_lora(model.linear_modules(), *lora);
        optimizer.emplace(lora->parameters(), AdamWOptions{});
        model.set_training(true);
        iteration = [&](int64_t n) {
            const at::Tensor part = ids.narrow(1, 0, n);
            const at::Tensor loss = model.forward(part, at::ones_like(part), {}, labels).loss;
            loss.backward();
            optimizer->step(1e-4);
            optimizer->zero_grad();
            loss.item<float>();
        };
        timing.flops = t5_adapter_train_step_flops(config, 1, c.length, kTarget,
                                                   [&](const std::string & path) { return lora->flops_per_row(path); });
    }
    iteration(std::min<int64_t>(64, c.length));
    std::vector<double> seconds;
    const auto          first = std::chrono::steady_clock::now();
    while (seconds.empty() || (seconds.size() < 3 && seconds_since(first) < 20.0)) {
        const auto start = std::chrono::steady_clock::now();
        iteration(c.length);
        seconds.push_back(seconds_since(start));
    }
    std::sort(seconds.begin(), seconds.end());
    const size_t mid = seconds.size() / 2;
    timing.seconds   = seconds.size() % 2 == 1 ? seconds[mid] : (seconds[mid - 1] + seconds[mid]) / 2;
    timing.reps      = static_cast<int64_t>(seconds.size());
    timing.peak_rss  = peak_memory_bytes();
    return timing;
}

}  // namespace cgm
