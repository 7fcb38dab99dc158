// BEiT's model FLOPs (lib/models/beit_flops) checked against what the model really executes: a
// counting adapter on every linear module, the classifier included, records the rows each one
// processes in a forward pass; from those rows and the modules' own weight shapes the test rebuilds
// the count. Only the patch embedding (2 B N C P P D) and the attention products (4 B H head_size
// per query-key pair, (1 + N)^2 of them per layer) are written here by hand.
#include "adapters/lora.h"
#include "models/beit.h"
#include "models/beit_flops.h"
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

// 3 x 3 patches of 4 x 4 pixels, hidden 12 in 3 heads, d_ff 20, 5 labels.
BeitModel tiny_beit() {
    const nlohmann::json config = { { "hidden_size", 12 },      { "num_hidden_layers", 2 }, { "num_attention_heads", 3 },
                                    { "intermediate_size", 20 }, { "image_size", 12 },       { "patch_size", 4 },
                                    { "use_relative_position_bias", true },
                                    { "num_labels", 5 } };
    return BeitModel::random(BeitConfig::from_json(config, "test"), 4);
}

// One forward pass with a loss under row counters.
ExecutedRows count_forward(BeitModel & model, int64_t batch) {
    const BeitConfig & c      = model.config();
    const at::Tensor   pixels = at::randn({ batch, c.num_channels, c.image_size, c.image_size });
    const at::Tensor   labels = at::randint(0, c.num_labels(), { batch }, at::kLong);
    return count_executed_rows(model, [&] { model.forward(pixels, labels); });
}

}  // namespace

TEST_CASE("beit FLOPs: the forward count is what the modules execute", "[unit][flops]") {
    const int64_t      B     = 2;
    BeitModel          model = tiny_beit();
    const BeitConfig & c     = model.config();
    const ExecutedRows      counted = count_forward(model, B);
    REQUIRE(counted.rows.at("classifier") == B);  // on the pooled output, one row per image

    const int64_t N = c.num_patches(), C = c.num_channels, P = c.patch_size, D = c.hidden_size;
    const double  patches   = 2.0 * static_cast<double>(B * N * C * P * P * D);
    const double  attention = static_cast<double>(c.num_hidden_layers) * 4.0 *
                             static_cast<double>(B * c.num_attention_heads * c.head_size() * (1 + N) * (1 + N));
    CHECK(beit_forward_flops(c, B) == Approx(counted.linear_flops + patches + attention));

    // Each module's rows, as the count assumes them, against the rows it processed.
    REQUIRE(counted.rows.size() == static_cast<size_t>(6 * c.num_hidden_layers + 1));
    for (const auto & [path, rows] : counted.rows) {
        CAPTURE(path);
        const AdapterFlops one_per_row = [&](const std::string & p) { return p == path ? 1.0 : 0.0; };
        CHECK(beit_forward_flops(c, B, one_per_row) - beit_forward_flops(c, B) == Approx(rows));
    }
}

TEST_CASE("beit FLOPs: LoRA adds 2 r (d_in + d_out) per row; a LoRA step adds its weight gradients", "[unit][flops]") {
    const int64_t B     = 3;
    BeitModel     model = tiny_beit();
    LoraConfig    config;
    config.r               = 4;
    config.targets         = { "query", "value" };
    config.modules_to_save = { "classifier" };
    config.task_type       = "";
    const LoraAdapter  adapter = create_lora(model.linear_modules(), config, 1);
    const AdapterFlops lora    = [&](const std::string & path) { return adapter.flops_per_row(path); };
    const ExecutedRows      counted = count_forward(model, B);

    double expected = 0.0;
    for (const auto & [path, layer] : adapter.layers) {
        const double d_in = static_cast<double>(layer->A.size(1)), d_out = static_cast<double>(layer->B.size(0));
        expected += 2.0 * 4.0 * (d_in + d_out) * counted.rows.at(path);
    }
    REQUIRE(adapter.layers.size() == 2 * 2);  // query and value of both layers; the classifier is saved
    const double base = beit_forward_flops(model.config(), B);
    CHECK(beit_forward_flops(model.config(), B, lora) - base == Approx(expected));
    // forward + input gradients (one forward each) + LoRA weight gradients (LoRA's forward again)
    CHECK(beit_adapter_train_step_flops(model.config(), B, lora) == Approx(2.0 * (base + expected) + expected));
}
