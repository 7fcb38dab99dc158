#pragma once
// T5 encoder-decoder (v1.0 and v1.1/Flan) as in Hugging Face transformers' modeling_t5.py:
// RMS norm, no 1/sqrt(d) in attention, relative position bias from block 0 shared by its stack,
// KV-cached greedy decoding. Weights are kept under their Hugging Face names.
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "models/adaptable_model.h"
#include "models/linear.h"
#include "models/param_slots.h"
#include "models/t5_attention_bias.h"
#include "models/t5_config.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cgm {

struct OutputMixInput;

// Choices that change how the model computes, not its weights.
struct T5RunOptions {
    int64_t ff_topk = 0;  // keep the K largest FF pre-activations per token, zero the rest (0: dense)
    int64_t q_chunk = 0;  // attention and FF over chunks of this many query positions (0: all at once)
    int64_t attn_topk = 0;  // encoder and cross-attention keep the K largest scores per query (0: all)
};

struct T5Attention {
    Linear     q, k, v, o;     // q,k,v: [inner, d_model]; o: [d_model, inner]
    at::Tensor relative_bias;  // [buckets, heads] in block 0 of each stack, undefined elsewhere
};

struct T5FeedForward {
    Linear wi;         // [d_ff, d_model] (ungated) or the activated half wi_0 (gated)
    Linear wi_linear;  // wi_1 [d_ff, d_model] (gated only)
    Linear wo;         // [d_model, d_ff]
};

struct T5Block {
    at::Tensor    self_attn_norm;
    T5Attention   self_attn;
    at::Tensor    cross_attn_norm;  // decoder only
    T5Attention   cross_attn;       // decoder only
    at::Tensor    ff_norm;
    T5FeedForward ff;
};

struct T5Stack {
    std::vector<T5Block> blocks;
    at::Tensor           final_norm;
};

// Keys and values of every decoder layer, so each generated token costs one position.
struct T5DecoderCache {
    std::vector<at::Tensor> self_k, self_v;    // [B, H, t, d_kv], grown each step
    std::vector<at::Tensor> cross_k, cross_v;  // [B, H, S, d_kv], computed on the first step
    int64_t                 length = 0;        // decoder positions already cached
    std::map<const Linear *, at::Tensor> adapter_state;  // what adapters carry from step to step
};

struct T5Output {
    at::Tensor              logits;               // [B, T, V] float32
    at::Tensor              loss;                 // scalar float32, when labels are given
    at::Tensor              encoder_last_hidden;  // [B, S, d_model]
    std::vector<at::Tensor> encoder_hidden;       // with keep_hidden: L+1 states (input of each block, final)
    std::vector<at::Tensor> decoder_hidden;
};

struct T5Generation {
    at::Tensor              ids;          // [B, 1 + steps]: decoder start, tokens, pad after EOS
    std::vector<at::Tensor> step_logits;  // [B, V] float32 per step, when requested
};

class T5Model : public AdaptableModel {
  public:
    // Reads config.json and the safetensors weights of a Hugging Face T5 folder; names and
    // shapes are checked against the config and all problems reported together.
    static T5Model load(const std::string & model_dir, c10::ScalarType dtype = c10::kFloat,
                        c10::Device device = c10::Device(c10::kCPU));
    // Random weights as transformers initialises T5 (training from scratch, benchmarks, tests).
    static T5Model random(const T5Config & config, uint64_t seed, c10::ScalarType dtype = c10::kFloat,
                          c10::Device device = c10::Device(c10::kCPU));

    const T5Config & config() const { return config_; }
    T5RunOptions &   options() { return options_; }
    void             set_training(bool training) override { training_ = training; }
    bool             training() const override { return training_; }
    c10::ScalarType  dtype() const override;
    c10::Device      device() const override;
    int64_t          hidden_size() const override { return config_.d_model; }

    // Every parameter under its Hugging Face name (tensors share storage with the model).
    NamedTensors named_parameters() const override;
    // The projections adapters can attach to (q, k, v, o, wi/wi_0, wi_1, wo of every block).
    std::vector<NamedLinear> linear_modules() override;
    int64_t      num_parameters() const override;
    // The encoder's modules, and cross-attention k and v (whose input is the encoder output).
    bool sees_routed_tokens(const std::string & path) const override;
    // Run at the start of every encode(), with the encoder as RoutingInput::encode. While a router
    // lives, encode() also sets per-row routing state, so an encoder output cannot be reused for
    // other rows (index_select) without encoding them again.
    void set_input_router(std::weak_ptr<InputRouter> router) override { input_router_ = std::move(router); }
    bool has_input_router() const override { return !input_router_.expired(); }
    void check_adapters() const override;
    // With a mixture, forward() gives the mixture's logits and loss (no hidden states) and
    // generate() decodes greedily from the mixed next-token distribution.
    void set_output_mixture(std::shared_ptr<OutputMixture> mixture) override { output_mixture_ = std::move(mixture); }
    bool has_output_mixture() const override { return static_cast<bool>(output_mixture_); }
    // The names and shapes a checkpoint for `config` must have.
    static ShapeMap expected_shapes(const T5Config & config);

    // input_ids, attention_mask: [B, S] int64 -> [B, S, d_model]
    at::Tensor encode(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                      std::vector<at::Tensor> * hidden = nullptr) const;
    // decoder_input_ids: [B, T] (positions after those in `cache`, if any) -> [B, T, d_model].
    // decoder_mask [B, T] marks real decoder positions (for adapters; attention is causal anyway).
    at::Tensor decode(const at::Tensor & decoder_input_ids, const at::Tensor & encoder_out,
                      const at::Tensor & attention_mask, T5DecoderCache * cache = nullptr,
                      std::vector<at::Tensor> * hidden = nullptr, const at::Tensor * decoder_mask = nullptr) const;
    // [B, T, d_model] -> [B, T, V] float32
    at::Tensor lm_logits(const at::Tensor & decoder_out) const;

    // labels [B, T] with -100 ignored; decoder_input_ids default to shift_right(labels).
    T5Output forward(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                     const at::Tensor & decoder_input_ids, const at::Tensor & labels = {},
                     bool keep_hidden = false) const;
    // Greedy decoding with the KV cache: at most max_new_tokens, stops when every row hit EOS.
    T5Generation generate(const at::Tensor & input_ids, const at::Tensor & attention_mask, int64_t max_new_tokens,
                          bool keep_step_logits = false) const;
    // Decoder start token, then labels[:, :-1] with -100 replaced by pad.
    at::Tensor shift_right(const at::Tensor & labels) const;

  private:
    explicit T5Model(const T5Config & config);
    std::vector<ParamSlot> slots();
    // The sequence a layer input belongs to, as adapters see it.
    struct Side {
        const at::Tensor * mask   = nullptr;  // [B, T] real tokens; nullptr: all
        bool               causal = false;
        int64_t            offset = 0;
        T5DecoderCache *   cache  = nullptr;
    };
    AdapterCall call(const Side & side, const Linear & linear) const;
    at::Tensor  attention(const T5Attention & attn, const at::Tensor & x, const Side & x_side, const at::Tensor & kv_source,
                          const Side & kv_side, const T5AttentionBias & bias, at::Tensor * cache_k, at::Tensor * cache_v,
                          bool cross) const;
    at::Tensor  feed_forward(const T5FeedForward & ff, const at::Tensor & x, const Side & side) const;
    void        refuse_chunking(const T5FeedForward & ff) const;  // an Error if an adapter there needs the whole sequence
    at::Tensor norm(const at::Tensor & x, const at::Tensor & weight) const;
    at::Tensor run_encoder(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                           std::vector<at::Tensor> * hidden) const;
    at::Tensor dropout(const at::Tensor & x) const;
    T5Output   plain_forward(const at::Tensor & input_ids, const at::Tensor & attention_mask, const at::Tensor & decoder_input_ids,
                             const at::Tensor & labels, bool keep_hidden) const;
    // The output mixture's view of a batch: pooled token embeddings, the base's pooled encoder
    // output, and the model's logits on chosen rows.
    void mixture_input(OutputMixInput & in, const at::Tensor & input_ids, const at::Tensor & attention_mask,
                       const at::Tensor & decoder_input_ids, const at::Tensor & labels) const;
    // Greedy decoding of model rows (row i holds example rows[i] of `batch`; undefined: row i is
    // example i), whose step logits [N, V] `mix` turns into the examples' [B, V].
    T5Generation greedy(const at::Tensor & input_ids, const at::Tensor & attention_mask, const at::Tensor & rows,
                        const std::function<at::Tensor(const at::Tensor &)> & mix, int64_t batch, int64_t max_new_tokens,
                        bool keep_step_logits) const;

    T5Config     config_;
    T5RunOptions options_;
    bool         training_ = false;
    std::weak_ptr<InputRouter> input_router_;
    std::shared_ptr<OutputMixture> output_mixture_;
    at::Tensor   shared_;   // [V, d_model]
    at::Tensor   lm_head_;  // [V, d_model]; undefined when tied to shared_
    T5Stack      encoder_;
    T5Stack      decoder_;
};

}  // namespace cgm
