// The model FLOPs that benchmarks divide by their times (lib/models/t5_flops), checked against what
// the model really executes: a counting adapter on every linear module records the rows each one
// processes in a forward pass and in greedy decoding with the KV cache. From those rows and the
// modules' own weight shapes the test rebuilds the count; only the attention products (4 B H d_kv
// per query-key pair) and the LM head are written here by hand.
#include "adapters/lora.h"
#include "models/t5.h"
#include "models/t5_flops.h"
#include "support/row_counter.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

using namespace cgm;
using namespace cgm::test;

namespace {

T5Model tiny_t5(bool gated, bool tied) {
    const nlohmann::json config = { { "vocab_size", 50 },
                                    { "d_model", 16 },
                                    { "d_kv", 6 },
                                    { "d_ff", 40 },
                                    { "num_layers", 3 },
                                    { "num_decoder_layers", 2 },
                                    { "num_heads", 3 },
                                    { "feed_forward_proj", gated ? "gated-gelu" : "relu" },
                                    { "tie_word_embeddings", tied } };
    return T5Model::random(T5Config::from_json(config, "test"), 3);
}

double attention_products(const T5Config & c, int64_t batch, double pairs) {
    return 4.0 * static_cast<double>(batch * c.num_heads * c.d_kv) * pairs;
}

double lm_head(const T5Config & c, double rows) {
    return 2.0 * rows * static_cast<double>(c.d_model * c.vocab_size);
}

}  // namespace

TEST_CASE("t5 FLOPs: the forward count is what the modules execute", "[unit][flops]") {
    const int64_t B = 2, S = 7, T = 4;
    for (const bool gated : { false, true }) {
        T5Model          model = tiny_t5(gated, !gated);
        const T5Config & c     = model.config();
        const at::Tensor ids = at::randint(2, 50, { B, S }, at::kLong), labels = at::randint(2, 50, { B, T }, at::kLong);
        const at::Tensor mask    = at::ones({ B, S }, at::kLong);
        const ExecutedRows counted = count_executed_rows(model, [&] { model.forward(ids, mask, {}, labels); });

        const double attention = c.num_layers * attention_products(c, B, S * S) +
                                 c.num_decoder_layers * (attention_products(c, B, T * T) + attention_products(c, B, T * S));
        CHECK(t5_forward_flops(c, B, S, T) == Approx(counted.linear_flops + attention + lm_head(c, B * T)));

        // Each module's rows, as the count assumes them, against the rows it processed.
        for (const auto & [path, rows] : counted.rows) {
            CAPTURE(gated, path);
            const AdapterFlops one_per_row = [&](const std::string & p) { return p == path ? 1.0 : 0.0; };
            CHECK(t5_forward_flops(c, B, S, T, one_per_row) - t5_forward_flops(c, B, S, T) == Approx(rows));
        }
    }
}

TEST_CASE("t5 FLOPs: greedy decoding counts one position a step and cross keys once", "[unit][flops]") {
    const int64_t B = 3, S = 5, steps = 4;
    T5Model          model = tiny_t5(true, false);
    const T5Config & c     = model.config();
    // A zero lm_head row gives EOS logit 0 among 49 random ones: no row stops early (1 in 2^49).
    for (auto & [name, tensor] : model.named_parameters()) {
        if (name == "lm_head.weight") {
            tensor[c.eos_token_id].zero_();
        }
    }
    const at::Tensor ids = at::randint(2, 50, { B, S }, at::kLong), mask = at::ones({ B, S }, at::kLong);
    int64_t          generated = 0;
    const ExecutedRows counted = count_executed_rows(model, [&] { generated = model.generate(ids, mask, steps).ids.size(1) - 1; });
    REQUIRE(generated == steps);

    const double self_pairs = steps * (steps + 1) / 2.0;  // step t attends to the t positions cached
    const double attention  = c.num_layers * attention_products(c, B, S * S) +
                             c.num_decoder_layers * (attention_products(c, B, self_pairs) + attention_products(c, B, steps * S));
    CHECK(t5_greedy_flops(c, B, S, steps) == Approx(counted.linear_flops + attention + lm_head(c, B * steps)));
    for (const auto & [path, rows] : counted.rows) {
        CAPTURE(path);
        const AdapterFlops one_per_row = [&](const std::string & p) { return p == path ? 1.0 : 0.0; };
        CHECK(t5_greedy_flops(c, B, S, steps, one_per_row) - t5_greedy_flops(c, B, S, steps) == Approx(rows));
    }
}

TEST_CASE("t5 FLOPs: LoRA adds 2 r (d_in + d_out) per row; a LoRA step adds its weight gradients", "[unit][flops]") {
    const int64_t B = 2, S = 6, T = 3;
    T5Model       model = tiny_t5(false, true);
    LoraConfig    config;
    config.r       = 4;
    config.targets = { "q", "o", "wo" };  // d_out < d_in, d_out > d_in, and both sides of the attention
    const LoraAdapter  adapter = create_lora(model.linear_modules(), config, 1);
    const AdapterFlops lora    = [&](const std::string & path) { return adapter.flops_per_row(path); };
    const at::Tensor ids = at::randint(2, 50, { B, S }, at::kLong), labels = at::randint(2, 50, { B, T }, at::kLong);
    const at::Tensor mask    = at::ones({ B, S }, at::kLong);
    const ExecutedRows counted = count_executed_rows(model, [&] { model.forward(ids, mask, {}, labels); });

    double expected = 0.0;
    for (const auto & [path, layer] : adapter.layers) {
        const double d_in = static_cast<double>(layer->A.size(1)), d_out = static_cast<double>(layer->B.size(0));
        expected += 2.0 * 4.0 * (d_in + d_out) * counted.rows.at(path);
    }
    REQUIRE(adapter.layers.size() == 3 * 3 + 2 * 5);  // encoder: q, o, wo; decoder: q, o twice and wo
    const double base = t5_forward_flops(model.config(), B, S, T);
    CHECK(t5_forward_flops(model.config(), B, S, T, lora) - base == Approx(expected));
    // forward + input gradients (one forward each) + LoRA weight gradients (LoRA's forward again)
    CHECK(t5_adapter_train_step_flops(model.config(), B, S, T, lora) == Approx(2.0 * (base + expected) + expected));
}
