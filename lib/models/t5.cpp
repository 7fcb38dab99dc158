#include "models/t5.h"

#include "adapters/output_mixture.h"
#include "core/error.h"
#include "models/chunked_attention.h"
#include "models/dropout.h"
#include "models/topk_ff.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <limits>

namespace cgm {
namespace {

// Checkpoint keys that Hugging Face ignores for T5: tied copies of `shared` and an unused
// cross-attention bias table that old checkpoints (t5-small on the hub) still carry.
const std::set<std::string> kIgnorableKeys = {
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
};

// [B, T, H*dk] -> [B, H, T, dk]
at::Tensor split_heads(const at::Tensor & x, int64_t heads) {
    return x.view({ x.size(0), x.size(1), heads, -1 }).transpose(1, 2);
}

// Applies f to chunks of `chunk` positions along dim 1 of x and concatenates the results.
template <class F> at::Tensor chunked(const at::Tensor & x, int64_t chunk, F && f) {
    const int64_t n = x.size(1);
    if (chunk <= 0 || chunk >= n) {
        return f(x, 0, n);
    }
    std::vector<at::Tensor> parts;
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t len = std::min(chunk, n - start);
        parts.push_back(f(x.narrow(1, start, len), start, len));
    }
    return at::cat(parts, 1);
}

// Calls f(block, "encoder.block.<i>.layer.", is_decoder, i) for every block, encoder first.
template <class F> void for_each_block(T5Stack & encoder, T5Stack & decoder, F && f) {
    for (const bool is_decoder : { false, true }) {
        T5Stack & stack = is_decoder ? decoder : encoder;
        for (size_t i = 0; i < stack.blocks.size(); ++i) {
            f(stack.blocks[i], std::string(is_decoder ? "decoder" : "encoder") + ".block." + std::to_string(i) + ".layer.",
              is_decoder, i);
        }
    }
}

void check_ids(const at::Tensor & ids, const char * what) {
    if (ids.dim() != 2 || ids.scalar_type() != at::kLong) {
        throw Error(std::string("T5: ") + what + " must be an int64 [batch, length] tensor");
    }
}

}  // namespace

T5Model::T5Model(const T5Config & config) : config_(config) {
    encoder_.blocks.resize(static_cast<size_t>(config.num_layers));
    decoder_.blocks.resize(config.encoder_only ? 0 : static_cast<size_t>(config.num_decoder_layers));
}

std::vector<ParamSlot> T5Model::slots() {
    const int64_t            d = config_.d_model, inner = config_.inner_dim(), ff = config_.d_ff;
    std::vector<ParamSlot> out{ { "shared.weight", &shared_, { config_.vocab_size, d } } };
    for (const NamedLinear & m : linear_modules()) {
        const std::string    leaf  = m.path.substr(m.path.rfind('.') + 1);
        std::vector<int64_t> shape = { inner, d };  // q, k, v
        if (leaf == "o") {
            shape = { d, inner };
        } else if (leaf == "wo") {
            shape = { d, ff };
        } else if (leaf.rfind("wi", 0) == 0) {
            shape = { ff, d };
        }
        out.push_back({ m.path + ".weight", &m.linear->weight, shape });
    }
    for_each_block(encoder_, decoder_, [&](T5Block & b, const std::string & p, bool is_decoder, size_t i) {
        out.push_back({ p + "0.layer_norm.weight", &b.self_attn_norm, { d } });
        if (i == 0) {  // the relative position bias of the whole stack
            out.push_back({ p + "0.SelfAttention.relative_attention_bias.weight",
                            &b.self_attn.relative_bias,
                            { config_.relative_attention_num_buckets, config_.num_heads } });
        }
        if (is_decoder) {
            out.push_back({ p + "1.layer_norm.weight", &b.cross_attn_norm, { d } });
        }
        out.push_back({ p + (is_decoder ? "2" : "1") + ".layer_norm.weight", &b.ff_norm, { d } });
    });
    out.push_back({ "encoder.final_layer_norm.weight", &encoder_.final_norm, { d } });
    if (config_.encoder_only) {
        return out;
    }
    out.push_back({ "decoder.final_layer_norm.weight", &decoder_.final_norm, { d } });
    if (!config_.tie_word_embeddings) {
        out.push_back({ "lm_head.weight", &lm_head_, { config_.vocab_size, d } });
    }
    return out;
}

ShapeMap T5Model::expected_shapes(const T5Config & config) {
    T5Model shape_only(config);
    return slot_shapes(shape_only.slots());
}

T5Model T5Model::load(const std::string & model_dir, c10::ScalarType dtype, c10::Device device) {
    if (!std::filesystem::is_directory(model_dir)) {
        fail(model_dir, "not a directory");
    }
    const std::string config_path = (std::filesystem::path(model_dir) / "config.json").string();
    T5Model           model(T5Config::read(config_path));
    std::set<std::string> ignorable = kIgnorableKeys;
    if (model.config_.tie_word_embeddings) {
        ignorable.insert("lm_head.weight");  // some exports write the tied head out as well
    }
    load_slots(model_dir, model.slots(), ignorable, dtype, device);
    return model;
}

T5Model T5Model::random(const T5Config & config, uint64_t seed, c10::ScalarType dtype, c10::Device device) {
    T5Model       model(config);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const auto    d   = static_cast<double>(config.d_model);
    for (auto & s : model.slots()) {
        // As transformers' T5 init, except N(0, 1/d_model) for an untied lm_head (theirs is N(0, 1)).
        double std = 1.0 / std::sqrt(static_cast<double>(s.shape.back()));  // fan-in
        if (s.name == "shared.weight") {
            std = 1.0;
        } else if (s.name.find("relative_attention_bias") != std::string::npos) {
            std = 1.0 / std::sqrt(d);
        } else if (s.name.size() > 9 && s.name.compare(s.name.size() - 9, 9, ".q.weight") == 0) {
            std = 1.0 / std::sqrt(d * static_cast<double>(config.d_kv));  // no 1/sqrt(d_kv) in T5 attention
        }
        const at::Tensor t = s.shape.size() == 1 ? at::ones(s.shape) : at::randn(s.shape, gen) * std;
        *s.tensor          = t.to(device, dtype);
    }
    return model;
}

c10::ScalarType T5Model::dtype() const {
    return shared_.scalar_type();
}

c10::Device T5Model::device() const {
    return shared_.device();
}

NamedTensors T5Model::named_parameters() const {
    return slot_tensors(const_cast<T5Model *>(this)->slots());
}

std::vector<NamedLinear> T5Model::linear_modules() {
    std::vector<NamedLinear> out;
    const auto add_attention = [&](const std::string & prefix, T5Attention & a) {
        for (auto [leaf, linear] : { std::pair<const char *, Linear *>{ "q", &a.q }, { "k", &a.k }, { "v", &a.v }, { "o", &a.o } }) {
            out.push_back({ prefix + leaf, linear });
        }
    };
    for_each_block(encoder_, decoder_, [&](T5Block & b, const std::string & p, bool is_decoder, size_t) {
        add_attention(p + "0.SelfAttention.", b.self_attn);
        if (is_decoder) {
            add_attention(p + "1.EncDecAttention.", b.cross_attn);
        }
        const std::string ff = p + (is_decoder ? "2" : "1") + ".DenseReluDense.";
        if (config_.gated_ff) {
            out.push_back({ ff + "wi_0", &b.ff.wi });
            out.push_back({ ff + "wi_1", &b.ff.wi_linear });
        } else {
            out.push_back({ ff + "wi", &b.ff.wi });
        }
        out.push_back({ ff + "wo", &b.ff.wo });
    });
    return out;
}

int64_t T5Model::num_parameters() const {
    return slot_numel(const_cast<T5Model *>(this)->slots());
}

at::Tensor T5Model::norm(const at::Tensor & x, const at::Tensor & weight) const {
    // T5LayerNorm: scale only, no mean subtraction; the variance is taken in float32.
    const at::Tensor xf       = x.to(at::kFloat);
    const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (xf * at::rsqrt(variance + config_.layer_norm_epsilon)).to(weight.scalar_type());
}

at::Tensor T5Model::dropout(const at::Tensor & x) const {
    return training_ && config_.dropout_rate > 0 ? cgm::dropout(x, config_.dropout_rate) : x;
}

AdapterCall T5Model::call(const Side & side, const Linear & linear) const {
    return { training_, side.mask, side.causal, side.offset, side.cache ? &side.cache->adapter_state[&linear] : nullptr };
}

at::Tensor T5Model::attention(const T5Attention & attn, const at::Tensor & x, const Side & x_side,
                              const at::Tensor & kv_source, const Side & kv_side, const T5AttentionBias & bias,
                              at::Tensor * cache_k, at::Tensor * cache_v, bool cross) const {
    const int64_t heads = config_.num_heads;
    const at::Tensor q  = split_heads(attn.q.forward(x, call(x_side, attn.q)), heads);  // [B, H, Tq, dk]
    at::Tensor k, v;                                                   // [B, H, Tk, dk]
    if (cross && cache_k != nullptr && cache_k->defined()) {
        k = *cache_k;
        v = *cache_v;
    } else {
        k = split_heads(attn.k.forward(kv_source, call(kv_side, attn.k)), heads);
        v = split_heads(attn.v.forward(kv_source, call(kv_side, attn.v)), heads);
        if (!cross && cache_k != nullptr && cache_k->defined()) {
            k = at::cat({ *cache_k, k }, 2);
            v = at::cat({ *cache_v, v }, 2);
        }
        if (cache_k != nullptr) {
            *cache_k = k;
            *cache_v = v;
        }
    }
    // Top-k applies where a query sees the whole source: encoder self-attention, cross-attention.
    const AttentionPlan plan{ options_.q_chunk, cross || !x_side.causal ? options_.attn_topk : 0,
                              training_ ? config_.dropout_rate : 0.0 };
    const BiasRows rows = [bias](const at::Tensor & table, int64_t start, int64_t len) { return bias.rows(table, start, len); };
    const at::Tensor ctx = attend(q, k, v, bias.table(), rows, plan).transpose(1, 2);  // [B, Tq, H, dk]
    return attn.o.forward(ctx.reshape({ ctx.size(0), ctx.size(1), -1 }), call(x_side, attn.o));  // [B, Tq, d_model]
}

at::Tensor T5Model::feed_forward(const T5FeedForward & ff, const at::Tensor & x, const Side & side) const {
    const bool chunking = options_.q_chunk > 0 && options_.q_chunk < x.size(1);
    if (chunking) {
        refuse_chunking(ff);
    }
    const auto one_chunk = [&](const at::Tensor & part, int64_t start, int64_t) {
        Side chunk_side = side;  // a chunk reaches only adapters that need no sequence-wide view
        chunk_side.offset += start;
        chunk_side.mask = chunking ? nullptr : side.mask;
        const at::Tensor pre = ff.wi.forward(part, call(chunk_side, ff.wi));  // [B, t, d_ff] pre-activations
        at::Tensor       h   = activate(config_.activation, pre);
        if (config_.gated_ff) {
            h = h * ff.wi_linear.forward(part, call(chunk_side, ff.wi_linear));
        }
        h = keep_topk(h, pre, options_.ff_topk);
        return ff.wo.forward(dropout(h), call(chunk_side, ff.wo));  // [B, t, d_model]
    };
    return chunked(x, options_.q_chunk, one_chunk);
}

void T5Model::refuse_chunking(const T5FeedForward & ff) const {
    for (const Linear * l : { &ff.wi, &ff.wi_linear, &ff.wo }) {
        if (l->adapter && l->adapter->needs_whole_sequence()) {
            throw Error("--q-chunk: the feed-forward layers carry gates that need the whole sequence at once (CGM "
                        "gates average over it, X-LoRA's scalings are per token); use --q-chunk 0");
        }
    }
}

void T5Model::check_adapters() const {
    if (options_.q_chunk == 0) {
        return;
    }
    for (const T5Stack * stack : { &encoder_, &decoder_ }) {
        for (const T5Block & block : stack->blocks) {
            refuse_chunking(block.ff);
        }
    }
}

at::Tensor T5Model::encode(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                           std::vector<at::Tensor> * hidden) const {
    check_ids(input_ids, "input_ids");
    if (const auto router = input_router_.lock()) {
        router->route({ [&] { return run_encoder(input_ids, attention_mask, nullptr); }, &attention_mask, training_ });
    }
    return run_encoder(input_ids, attention_mask, hidden);
}

bool T5Model::sees_routed_tokens(const std::string & path) const {
    const auto ends_with = [&](const std::string & s) {
        return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
    };
    return path.rfind("encoder.", 0) == 0 || ends_with("EncDecAttention.k") || ends_with("EncDecAttention.v");
}

at::Tensor T5Model::run_encoder(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                                std::vector<at::Tensor> * hidden) const {
    const int64_t len  = input_ids.size(1);
    at::Tensor    h    = dropout(at::embedding(shared_, input_ids));  // [B, S, d]
    // Relative positions and padding: [1, H, S, S] + [B, 1, 1, S], a block of query rows at a time.
    const T5AttentionBias bias(config_, encoder_.blocks[0].self_attn.relative_bias, true, { 0, len, len }, attention_mask, false);
    const Side side{ &attention_mask, false, 0, nullptr };
    for (const T5Block & b : encoder_.blocks) {
        if (hidden) {
            hidden->push_back(h);
        }
        const at::Tensor x = norm(h, b.self_attn_norm);
        h = h + dropout(attention(b.self_attn, x, side, x, side, bias, nullptr, nullptr, false));
        h = h + dropout(feed_forward(b.ff, norm(h, b.ff_norm), side));
    }
    h = dropout(norm(h, encoder_.final_norm));
    if (hidden) {
        hidden->push_back(h);
    }
    return h;
}

at::Tensor T5Model::decode(const at::Tensor & decoder_input_ids, const at::Tensor & encoder_out,
                           const at::Tensor & attention_mask, T5DecoderCache * cache,
                           std::vector<at::Tensor> * hidden, const at::Tensor * decoder_mask) const {
    check_ids(decoder_input_ids, "decoder_input_ids");
    if (config_.encoder_only) {
        throw Error("T5: an encoder-only model (T5EncoderModel) has no decoder");
    }
    const int64_t len   = decoder_input_ids.size(1);
    const int64_t past  = cache ? cache->length : 0;
    const int64_t total = past + len;
    if (cache && cache->self_k.empty()) {
        const size_t n = decoder_.blocks.size();
        cache->self_k.resize(n), cache->self_v.resize(n), cache->cross_k.resize(n), cache->cross_v.resize(n);
    }
    at::Tensor h = dropout(at::embedding(shared_, decoder_input_ids));  // [B, T, d]
    // Causal: query at position past+i sees keys 0..past+i; relative positions [1, H, T, total].
    const T5AttentionBias self_bias(config_, decoder_.blocks[0].self_attn.relative_bias, false, { past, len, total }, {}, true);
    const T5AttentionBias cross_bias(config_, {}, false, { 0, len, attention_mask.size(1) }, attention_mask, false);  // [B, 1, 1, S]
    const Side       dec_side{ decoder_mask, true, past, cache };  // decoder positions: causal
    const Side       enc_side{ &attention_mask, false, 0, nullptr };
    for (size_t i = 0; i < decoder_.blocks.size(); ++i) {
        const T5Block & b = decoder_.blocks[i];
        if (hidden) {
            hidden->push_back(h);
        }
        const at::Tensor x = norm(h, b.self_attn_norm);
        h = h + dropout(attention(b.self_attn, x, dec_side, x, dec_side, self_bias, cache ? &cache->self_k[i] : nullptr,
                                  cache ? &cache->self_v[i] : nullptr, false));
        h = h + dropout(attention(b.cross_attn, norm(h, b.cross_attn_norm), dec_side, encoder_out, enc_side, cross_bias,
                                  cache ? &cache->cross_k[i] : nullptr, cache ? &cache->cross_v[i] : nullptr, true));
        h = h + dropout(feed_forward(b.ff, norm(h, b.ff_norm), dec_side));
    }
    if (cache) {
        cache->length = total;
    }
    h = dropout(norm(h, decoder_.final_norm));
    if (hidden) {
        hidden->push_back(h);
    }
    return h;
}

at::Tensor T5Model::lm_logits(const at::Tensor & decoder_out) const {
    if (config_.tie_word_embeddings) {
        // v1.0 rescales before the tied projection (Mesh TensorFlow convention).
        return at::linear(decoder_out * std::pow(static_cast<double>(config_.d_model), -0.5), shared_).to(at::kFloat);
    }
    return at::linear(decoder_out, lm_head_).to(at::kFloat);
}

at::Tensor T5Model::shift_right(const at::Tensor & labels) const {
    at::Tensor shifted = at::full_like(labels, config_.decoder_start_token_id);
    shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
    return shifted.masked_fill(shifted == -100, config_.pad_token_id);
}

T5Output T5Model::forward(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                          const at::Tensor & decoder_input_ids, const at::Tensor & labels, bool keep_hidden) const {
    if (!output_mixture_) {
        return plain_forward(input_ids, attention_mask, decoder_input_ids, labels, keep_hidden);
    }
    OutputMixInput in;
    mixture_input(in, input_ids, attention_mask, decoder_input_ids, labels);
    const MixedOutput m = output_mixture_->forward(in);
    T5Output          out;
    out.logits = m.logits;
    out.loss   = m.loss;
    return out;
}

void T5Model::mixture_input(OutputMixInput & in, const at::Tensor & input_ids, const at::Tensor & attention_mask,
                            const at::Tensor & decoder_input_ids, const at::Tensor & labels) const {
    // Masked means over the real source tokens: [B, S, d] -> [B, d]
    // The tensors are captured by value: the caller's may be temporaries.
    const auto pooled = [attention_mask](const at::Tensor & x) {
        const at::Tensor m = attention_mask.to(at::kFloat).unsqueeze(-1);  // [B, S, 1]
        return (x.to(at::kFloat) * m).sum(1) / m.sum(1).clamp_min(1.0);
    };
    in.batch          = input_ids.size(0);
    in.input_features = [this, input_ids, pooled] { return pooled(at::embedding(shared_, input_ids)); };
    in.base_features  = [this, input_ids, attention_mask, pooled] { return pooled(run_encoder(input_ids, attention_mask, nullptr)); };
    // The experts' logits only: the mixture computes its own loss.
    const at::Tensor dec_ids = decoder_input_ids.defined() || !labels.defined() ? decoder_input_ids : shift_right(labels);
    in.logits = [this, input_ids, attention_mask, dec_ids](const at::Tensor & rows) {
        const auto pick = [&rows](const at::Tensor & t) { return t.defined() ? t.index_select(0, rows.to(t.device())) : t; };
        return plain_forward(pick(input_ids), pick(attention_mask), pick(dec_ids), {}, false).logits;  // [N, T, V]
    };
    in.labels   = labels;
    in.training = training_;
}

T5Output T5Model::plain_forward(const at::Tensor & input_ids, const at::Tensor & attention_mask,
                                const at::Tensor & decoder_input_ids, const at::Tensor & labels, bool keep_hidden) const {
    T5Output out;
    const at::Tensor dec_ids = decoder_input_ids.defined() ? decoder_input_ids : shift_right(labels);
    out.encoder_last_hidden  = encode(input_ids, attention_mask, keep_hidden ? &out.encoder_hidden : nullptr);
    // Real decoder positions: those that predict a label (the first one always counts).
    at::Tensor dec_mask;
    if (labels.defined()) {
        dec_mask = labels.ne(-100).to(at::kLong);
        dec_mask.select(1, 0).fill_(1);
    }
    const at::Tensor dec_out = decode(dec_ids, out.encoder_last_hidden, attention_mask, nullptr,
                                      keep_hidden ? &out.decoder_hidden : nullptr, labels.defined() ? &dec_mask : nullptr);
    out.logits = lm_logits(dec_out);
    if (labels.defined()) {
        out.loss = at::cross_entropy_loss(out.logits.reshape({ -1, out.logits.size(-1) }), labels.reshape({ -1 }), {},
                                          at::Reduction::Mean, /*ignore_index=*/-100);
    }
    return out;
}

T5Generation T5Model::generate(const at::Tensor & input_ids, const at::Tensor & attention_mask, int64_t max_new_tokens,
                               bool keep_step_logits) const {
    c10::InferenceMode no_autograd;
    if (!output_mixture_) {
        return greedy(input_ids, attention_mask, {}, {}, input_ids.size(0), max_new_tokens, keep_step_logits);
    }
    OutputMixInput in;
    mixture_input(in, input_ids, attention_mask, {}, {});
    const OutputRoute route = output_mixture_->route(in);
    const at::Tensor  rows  = route.rows.to(input_ids.device());
    return greedy(input_ids.index_select(0, rows), attention_mask.index_select(0, rows), rows, route.mix, input_ids.size(0),
                  max_new_tokens, keep_step_logits);
}

T5Generation T5Model::greedy(const at::Tensor & input_ids, const at::Tensor & attention_mask, const at::Tensor & rows,
                             const std::function<at::Tensor(const at::Tensor &)> & mix, int64_t batch, int64_t max_new_tokens,
                             bool keep_step_logits) const {
    T5Generation       gen;
    const at::Tensor   enc      = encode(input_ids, attention_mask);
    at::Tensor         next     = at::full({ batch, 1 }, config_.decoder_start_token_id, input_ids.options());  // [B, 1]
    at::Tensor         finished = at::zeros({ batch, 1 }, input_ids.options().dtype(at::kBool));
    std::vector<at::Tensor> tokens{ next };
    T5DecoderCache     cache;
    for (int64_t step = 0; step < max_new_tokens; ++step) {
        const at::Tensor row_next = rows.defined() ? next.index_select(0, rows) : next;                           // [N, 1]
        at::Tensor       logits   = lm_logits(decode(row_next, enc, attention_mask, &cache)).select(1, 0);  // [N, V]
        if (mix) {
            logits = mix(logits);  // [B, V]
        }
        if (keep_step_logits) {
            gen.step_logits.push_back(logits);
        }
        next = logits.argmax(-1, /*keepdim=*/true).masked_fill(finished, config_.pad_token_id);  // [B, 1]
        tokens.push_back(next);
        finished = finished | (next == config_.eos_token_id);
        if (finished.all().item<bool>()) {
            break;
        }
    }
    gen.ids = at::cat(tokens, 1);
    return gen;
}

}  // namespace cgm
