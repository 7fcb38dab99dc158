#include "models/t5_flops.h"

#include "models/flop_tally.h"

namespace cgm {

namespace {

class FlopCounter {
  public:
    FlopCounter(const T5Config & config, const AdapterFlops & adapter) : c_(config), tally_(adapter) {}

    double total() const { return tally_.total(); }

    void linear(const std::string & path, double rows, int64_t d_in, int64_t d_out) {
        tally_.linear(path, rows, d_in, d_out);
    }

    void attention_products(int64_t batch, double pairs) { tally_.attention(batch, c_.num_heads, c_.d_kv, pairs); }

    void projections(const std::string & prefix, const char * names, double rows) {
        for (const char * n = names; *n != '\0'; ++n) {
            const bool out = *n == 'o';
            linear(prefix + *n, rows, out ? c_.inner_dim() : c_.d_model, out ? c_.d_model : c_.inner_dim());
        }
    }

    void feed_forward(const std::string & prefix, double rows) {
        if (c_.gated_ff) {
            linear(prefix + "wi_0", rows, c_.d_model, c_.d_ff);
            linear(prefix + "wi_1", rows, c_.d_model, c_.d_ff);
        } else {
            linear(prefix + "wi", rows, c_.d_model, c_.d_ff);
        }
        linear(prefix + "wo", rows, c_.d_ff, c_.d_model);
    }

    void encoder(int64_t batch, int64_t source) {
        const double rows = static_cast<double>(batch * source);
        for (int64_t i = 0; i < c_.num_layers; ++i) {
            const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
            projections(p + "0.SelfAttention.", "qkvo", rows);
            attention_products(batch, static_cast<double>(source * source));
            feed_forward(p + "1.DenseReluDense.", rows);
        }
    }

    // `positions` new decoder positions per example; self_pairs: the (query, key) pairs of the causal
    // self-attention as computed (a full square when teacher-forced, the cache when decoding).
    void decoder(int64_t batch, int64_t source, int64_t positions, double self_pairs) {
        const double rows = static_cast<double>(batch * positions);
        for (int64_t i = 0; i < c_.num_decoder_layers; ++i) {
            const std::string p = "decoder.block." + std::to_string(i) + ".layer.";
            projections(p + "0.SelfAttention.", "qkvo", rows);
            attention_products(batch, self_pairs);
            projections(p + "1.EncDecAttention.", "qo", rows);
            projections(p + "1.EncDecAttention.", "kv", static_cast<double>(batch * source));
            attention_products(batch, static_cast<double>(positions * source));
            feed_forward(p + "2.DenseReluDense.", rows);
        }
        linear("lm_head", rows, c_.d_model, c_.vocab_size);
    }

  private:
    const T5Config & c_;
    FlopTally        tally_;
};

}  // namespace

double t5_forward_flops(const T5Config & config, int64_t batch, int64_t source, int64_t target,
                        const AdapterFlops & adapter) {
    FlopCounter count(config, adapter);
    count.encoder(batch, source);
    if (!config.encoder_only) {
        count.decoder(batch, source, target, static_cast<double>(target * target));
    }
    return count.total();
}

double t5_greedy_flops(const T5Config & config, int64_t batch, int64_t source, int64_t steps,
                       const AdapterFlops & adapter) {
    FlopCounter count(config, adapter);
    count.encoder(batch, source);
    count.decoder(batch, source, steps, static_cast<double>(steps * (steps + 1)) / 2.0);
    return count.total();
}

double t5_adapter_train_step_flops(const T5Config & config, int64_t batch, int64_t source, int64_t target,
                                   const AdapterFlops & adapter) {
    return adapter_train_step_flops(
        [&](const AdapterFlops & a) { return t5_forward_flops(config, batch, source, target, a); }, adapter);
}

}  // namespace cgm
