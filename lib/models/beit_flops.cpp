#include "models/beit_flops.h"

#include "models/flop_tally.h"

#include <string>

namespace cgm {

double beit_forward_flops(const BeitConfig & c, int64_t batch, const AdapterFlops & adapter) {
    FlopTally     count(adapter);
    const int64_t d = c.hidden_size, ff = c.intermediate_size, tokens = 1 + c.num_patches();
    // A convolution whose stride is its kernel: each patch once, [C P P] -> [D].
    count.product(static_cast<double>(batch * c.num_patches()), c.num_channels * c.patch_size * c.patch_size, d);
    const double rows = static_cast<double>(batch * tokens);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        const std::string p = "beit.encoder.layer." + std::to_string(i) + ".";
        for (const char * name : { "query", "key", "value" }) {
            count.linear(p + "attention.attention." + name, rows, d, d);
        }
        count.attention(batch, c.num_attention_heads, c.head_size(), static_cast<double>(tokens * tokens));
        count.linear(p + "attention.output.dense", rows, d, d);
        count.linear(p + "intermediate.dense", rows, d, ff);
        count.linear(p + "output.dense", rows, ff, d);
    }
    count.linear("classifier", static_cast<double>(batch), d, c.num_labels());
    return count.total();
}

double beit_adapter_train_step_flops(const BeitConfig & config, int64_t batch, const AdapterFlops & adapter) {
    return adapter_train_step_flops([&](const AdapterFlops & a) { return beit_forward_flops(config, batch, a); },
                                    adapter);
}

}  // namespace cgm
