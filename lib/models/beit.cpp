#include "models/beit.h"

#include "adapters/output_mixture.h"

#include "core/error.h"
#include "models/dropout.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>
#include <set>

namespace cgm {

namespace {

// transformers' generate_relative_position_index: for every (query, key) pair of the 1 + N tokens,
// the row of the bias table: patch pairs by their (dy, dx) offset, then the three rows kept for
// CLS -> patch, patch -> CLS and CLS -> CLS.
at::Tensor relative_position_index(int64_t grid) {
    const int64_t    n      = grid * grid;
    const int64_t    rows   = (2 * grid - 1) * (2 * grid - 1) + 3;
    const at::Tensor pos    = at::arange(n, at::kLong);
    const at::Tensor y      = pos.div(grid, "floor"), x = pos.remainder(grid);                   // [N]
    const at::Tensor dy     = y.unsqueeze(1) - y.unsqueeze(0) + (grid - 1);                      // [N, N]
    const at::Tensor dx     = x.unsqueeze(1) - x.unsqueeze(0) + (grid - 1);
    at::Tensor       index  = at::empty({ n + 1, n + 1 }, at::kLong);
    index.slice(0, 1).slice(1, 1).copy_(dy * (2 * grid - 1) + dx);
    index.select(0, 0).fill_(rows - 3);
    index.select(1, 0).fill_(rows - 2);
    index.index_put_({ 0, 0 }, rows - 1);
    return index;
}

at::Tensor layer_norm(const at::Tensor & x, const at::Tensor & weight, const at::Tensor & bias, double eps) {
    return at::layer_norm(x, { x.size(-1) }, weight, bias, eps);
}

}  // namespace

BeitModel::BeitModel(const BeitConfig & config)
    : config_(config), layers_(static_cast<size_t>(config.num_hidden_layers)),
      relative_index_(relative_position_index(config.grid())) {}

std::vector<ParamSlot> BeitModel::slots() {
    const BeitConfig &     c = config_;
    const int64_t          d = c.hidden_size, n1 = c.num_patches() + 1;
    const int64_t          rel = c.num_relative_distances(), h = c.num_attention_heads;
    std::vector<ParamSlot> out{ { "beit.embeddings.cls_token", &cls_token_, { 1, 1, d } } };
    if (c.use_mask_token) {
        out.push_back({ "beit.embeddings.mask_token", &mask_token_, { 1, 1, d } });
    }
    if (c.use_absolute_position_embeddings) {
        out.push_back({ "beit.embeddings.position_embeddings", &position_embeddings_, { 1, n1, d } });
    }
    out.push_back({ "beit.embeddings.patch_embeddings.projection.weight", &patch_weight_,
                    { d, c.num_channels, c.patch_size, c.patch_size } });
    out.push_back({ "beit.embeddings.patch_embeddings.projection.bias", &patch_bias_, { d } });
    if (c.use_shared_relative_position_bias) {
        out.push_back({ "beit.encoder.relative_position_bias.relative_position_bias_table", &shared_bias_table_, { rel, h } });
    }
    for (const LinearSlot & m : linear_slots()) {
        out.push_back({ m.path + ".weight", &m.linear->weight, { m.d_out, m.d_in } });
        if (m.has_bias) {
            out.push_back({ m.path + ".bias", &m.linear->bias, { m.d_out } });
        }
    }
    for (size_t i = 0; i < layers_.size(); ++i) {
        BeitLayer &       l = layers_[i];
        const std::string p = "beit.encoder.layer." + std::to_string(i) + ".";
        out.push_back({ p + "layernorm_before.weight", &l.norm_before_weight, { d } });
        out.push_back({ p + "layernorm_before.bias", &l.norm_before_bias, { d } });
        out.push_back({ p + "layernorm_after.weight", &l.norm_after_weight, { d } });
        out.push_back({ p + "layernorm_after.bias", &l.norm_after_bias, { d } });
        if (c.use_relative_position_bias) {
            out.push_back({ p + "attention.attention.relative_position_bias.relative_position_bias_table",
                            &l.relative_bias_table, { rel, h } });
        }
        if (c.layer_scale_init_value > 0) {
            out.push_back({ p + "lambda_1", &l.lambda_1, { d } });
            out.push_back({ p + "lambda_2", &l.lambda_2, { d } });
        }
    }
    const std::string norm = c.use_mean_pooling ? "beit.pooler.layernorm." : "beit.layernorm.";
    at::Tensor &      w    = c.use_mean_pooling ? pool_norm_weight_ : final_norm_weight_;
    at::Tensor &      b    = c.use_mean_pooling ? pool_norm_bias_ : final_norm_bias_;
    out.push_back({ norm + "weight", &w, { d } });
    out.push_back({ norm + "bias", &b, { d } });
    return out;
}

std::vector<BeitModel::LinearSlot> BeitModel::linear_slots() {
    const int64_t           d = config_.hidden_size, ff = config_.intermediate_size;
    std::vector<LinearSlot> out;
    for (size_t i = 0; i < layers_.size(); ++i) {
        BeitLayer &       l = layers_[i];
        const std::string p = "beit.encoder.layer." + std::to_string(i) + ".";
        out.push_back({ p + "attention.attention.query", &l.query, d, d, true });
        out.push_back({ p + "attention.attention.key", &l.key, d, d, false });
        out.push_back({ p + "attention.attention.value", &l.value, d, d, true });
        out.push_back({ p + "attention.output.dense", &l.attention_output, d, d, true });
        out.push_back({ p + "intermediate.dense", &l.intermediate, ff, d, true });
        out.push_back({ p + "output.dense", &l.output, d, ff, true });
    }
    out.push_back({ "classifier", &classifier_, config_.num_labels(), d, true });
    return out;
}

std::vector<NamedLinear> BeitModel::linear_modules() {
    std::vector<NamedLinear> out;
    for (const LinearSlot & m : linear_slots()) {
        out.push_back({ m.path, m.linear });
    }
    return out;
}

// Buffers transformers keeps in some checkpoints, recomputed here from the config.
std::set<std::string> BeitModel::ignorable_names() const {
    std::set<std::string> names = { "beit.encoder.relative_position_bias.relative_position_index" };
    for (size_t i = 0; i < layers_.size(); ++i) {
        names.insert("beit.encoder.layer." + std::to_string(i) +
                     ".attention.attention.relative_position_bias.relative_position_index");
    }
    return names;
}

ShapeMap BeitModel::expected_shapes(const BeitConfig & config) {
    BeitModel shape_only(config);
    return slot_shapes(shape_only.slots());
}

BeitModel BeitModel::load(const std::string & model_dir, c10::ScalarType dtype, c10::Device device) {
    if (!std::filesystem::is_directory(model_dir)) {
        fail(model_dir, "not a directory");
    }
    BeitModel model(BeitConfig::read((std::filesystem::path(model_dir) / "config.json").string()));
    load_slots(model_dir, model.slots(), model.ignorable_names(), dtype, device);
    return model;
}

BeitModel BeitModel::random(const BeitConfig & config, uint64_t seed, c10::ScalarType dtype, c10::Device device) {
    BeitModel     model(config);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    std::set<const at::Tensor *> matrices = { &model.patch_weight_ };
    for (const LinearSlot & m : model.linear_slots()) {
        matrices.insert(&m.linear->weight);
    }
    for (auto & s : model.slots()) {
        const bool is_norm_weight = s.name.find("norm") != std::string::npos && s.name.find(".weight") != std::string::npos;
        at::Tensor t              = at::zeros(s.shape);  // biases, CLS token, position tables
        if (matrices.count(s.tensor) != 0) {
            t = at::randn(s.shape, gen) * config.initializer_range;
        } else if (is_norm_weight) {
            t = at::ones(s.shape);
        } else if (s.name.find("lambda_") != std::string::npos) {
            t = at::full(s.shape, config.layer_scale_init_value);
        }
        *s.tensor = t.to(device, dtype);
    }
    return model;
}

void BeitModel::replace_head(const std::vector<std::string> & labels, uint64_t seed) {
    if (labels.empty()) {
        throw Error("--labels: a classification head needs at least one class");
    }
    at::Generator gen      = at::make_generator<at::CPUGeneratorImpl>(seed);
    config_.labels         = labels;
    const auto    options  = patch_weight_.options();
    const int64_t n        = static_cast<int64_t>(labels.size());
    classifier_.weight     = (at::randn({ n, config_.hidden_size }, gen) * config_.initializer_range).to(options);
    classifier_.bias       = at::zeros({ n }, options);
}

c10::ScalarType BeitModel::dtype() const {
    return patch_weight_.scalar_type();
}

c10::Device BeitModel::device() const {
    return patch_weight_.device();
}

NamedTensors BeitModel::named_parameters() const {
    return slot_tensors(const_cast<BeitModel *>(this)->slots());
}

int64_t BeitModel::num_parameters() const {
    return slot_numel(const_cast<BeitModel *>(this)->slots());
}

at::Tensor BeitModel::dropout(const at::Tensor & x, double p) const {
    return training_ && p > 0 ? cgm::dropout(x, p) : x;
}

// Stochastic depth: in training, each example's residual branch is dropped with probability p and
// the kept ones scaled by 1 / (1 - p).
at::Tensor BeitModel::drop_path(const at::Tensor & x, double p) const {
    if (!training_ || p <= 0) {
        return x;
    }
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[0]              = x.size(0);
    const at::Tensor keep = at::empty(shape, x.options()).bernoulli_(1.0 - p);  // [B, 1, 1]
    return x * keep / (1.0 - p);
}

at::Tensor BeitModel::relative_bias(const at::Tensor & table) const {
    const int64_t n1 = relative_index_.size(0);
    const at::Tensor rows = table.index_select(0, relative_index_.view(-1).to(table.device()));  // [n1 * n1, H]
    return rows.view({ n1, n1, -1 }).permute({ 2, 0, 1 });                                         // [H, n1, n1]
}

void BeitModel::check_pixels(const at::Tensor & pixel_values) const {
    const BeitConfig & c = config_;
    if (pixel_values.dim() != 4 || pixel_values.size(1) != c.num_channels || pixel_values.size(2) != c.image_size ||
        pixel_values.size(3) != c.image_size) {
        fail("pixel_values", "expected [B, " + std::to_string(c.num_channels) + ", " + std::to_string(c.image_size) + ", " +
                                 std::to_string(c.image_size) + "], got " + c10::str(pixel_values.sizes()));
    }
}

at::Tensor BeitModel::embed(const at::Tensor & pixel_values) const {
    const BeitConfig & c = config_;
    const at::Tensor patches = at::conv2d(pixel_values.to(dtype()), patch_weight_, patch_bias_,
                                          { c.patch_size, c.patch_size });  // [B, D, grid, grid]
    const at::Tensor tokens  = patches.flatten(2).transpose(1, 2);          // [B, N, D]
    at::Tensor x = at::cat({ cls_token_.expand({ tokens.size(0), 1, c.hidden_size }), tokens }, 1);  // [B, 1 + N, D]
    if (position_embeddings_.defined()) {
        x = x + position_embeddings_;
    }
    return dropout(x, c.hidden_dropout_prob);
}

at::Tensor BeitModel::attention(const BeitLayer & l, const at::Tensor & x, const at::Tensor & shared_bias,
                                const AdapterCall & call) const {
    const int64_t b = x.size(0), n1 = x.size(1), h = config_.num_attention_heads, hd = config_.head_size();
    const auto    heads = [&](const Linear & lin) {
        return lin.forward(x, call).view({ b, n1, h, hd }).transpose(1, 2);  // [B, H, 1 + N, hd]
    };
    const at::Tensor q = heads(l.query), k = heads(l.key), v = heads(l.value);
    at::Tensor bias;  // [1 or B, H, n1, n1]
    if (l.relative_bias_table.defined()) {
        bias = relative_bias(l.relative_bias_table).unsqueeze(0);
    }
    if (shared_bias.defined()) {
        bias = bias.defined() ? bias + shared_bias : shared_bias;
    }
#if TORCH_VERSION_MAJOR >= 2
    const double     p       = training_ ? config_.attention_probs_dropout_prob : 0.0;
    const c10::optional<at::Tensor> mask = bias.defined() ? c10::optional<at::Tensor>(bias.to(q.scalar_type())) : c10::nullopt;
    const at::Tensor context = at::scaled_dot_product_attention(q, k, v, mask, p).transpose(1, 2).reshape({ b, n1, h * hd });  // [B, n1, D]
#else
    at::Tensor scores = at::matmul(q / std::sqrt(static_cast<double>(hd)), k.transpose(-1, -2));  // [B, H, n1, n1]
    if (bias.defined()) {
        scores = scores + bias;
    }
    const at::Tensor probs   = dropout(at::softmax(scores, -1), config_.attention_probs_dropout_prob);
    const at::Tensor context = at::matmul(probs, v).transpose(1, 2).reshape({ b, n1, h * hd });  // [B, n1, D]
#endif
    return dropout(l.attention_output.forward(context, call), config_.hidden_dropout_prob);
}

at::Tensor BeitModel::layer(const BeitLayer & l, const at::Tensor & x, const at::Tensor & shared_bias,
                            double drop_path_p, const AdapterCall & call) const {
    const double eps  = config_.layer_norm_eps;
    at::Tensor   attn = attention(l, layer_norm(x, l.norm_before_weight, l.norm_before_bias, eps), shared_bias, call);
    if (l.lambda_1.defined()) {
        attn = l.lambda_1 * attn;
    }
    const at::Tensor h  = drop_path(attn, drop_path_p) + x;  // [B, 1 + N, D]
    const at::Tensor ff = activate(config_.hidden_act,
                                   l.intermediate.forward(layer_norm(h, l.norm_after_weight, l.norm_after_bias, eps), call));
    at::Tensor out = dropout(l.output.forward(ff, call), config_.hidden_dropout_prob);
    if (l.lambda_2.defined()) {
        out = l.lambda_2 * out;
    }
    return drop_path(out, drop_path_p) + h;
}

at::Tensor BeitModel::encode(const at::Tensor & pixel_values, std::vector<at::Tensor> * hidden) const {
    check_pixels(pixel_values);
    // What gates average over: the patch tokens, not the CLS token. [B, 1 + N], 0 at CLS.
    at::Tensor patches = at::ones({ pixel_values.size(0), config_.num_patches() + 1 },
                                  at::TensorOptions().dtype(at::kLong).device(device()));
    patches.select(1, 0).zero_();
    if (const auto router = input_router_.lock()) {
        router->route({ [&] { return run_encoder(pixel_values, patches, nullptr); }, &patches, training_ });
    }
    return run_encoder(pixel_values, patches, hidden);
}

at::Tensor BeitModel::run_encoder(const at::Tensor & pixel_values, const at::Tensor & patches,
                                  std::vector<at::Tensor> * hidden) const {
    const AdapterCall call{ training_, &patches };
    at::Tensor        x           = embed(pixel_values);
    const at::Tensor shared_bias = shared_bias_table_.defined() ? relative_bias(shared_bias_table_).unsqueeze(0)
                                                                : at::Tensor();
    if (hidden) {
        hidden->push_back(x);
    }
    const auto layers = static_cast<int64_t>(layers_.size());
    for (int64_t i = 0; i < layers; ++i) {
        // transformers: drop-path rates rise linearly from 0 (first layer) to drop_path_rate (last).
        const double rate = layers > 1 ? config_.drop_path_rate * static_cast<double>(i) / static_cast<double>(layers - 1)
                                       : 0.0;
        x = layer(layers_[static_cast<size_t>(i)], x, shared_bias, rate, call);
        if (hidden) {
            hidden->push_back(x);
        }
    }
    return x;
}

BeitOutput BeitModel::forward(const at::Tensor & pixel_values, const at::Tensor & labels, bool keep_hidden) const {
    return output_mixture_ ? mixed_forward(pixel_values, labels) : plain_forward(pixel_values, labels, keep_hidden);
}

BeitOutput BeitModel::mixed_forward(const at::Tensor & pixel_values, const at::Tensor & labels) const {
    check_pixels(pixel_values);
    OutputMixInput in;
    in.batch          = pixel_values.size(0);
    in.input_features = [&] { return embed(pixel_values).slice(1, 1).mean(1).to(at::kFloat); };  // [B, D] patch embeddings' mean
    in.base_features  = [&] { return plain_forward(pixel_values, {}, false).pooled.to(at::kFloat); };
    in.logits         = [&](const at::Tensor & rows) {
        return plain_forward(pixel_values.index_select(0, rows.to(pixel_values.device())), {}, false).logits;  // [N, C]
    };
    in.labels   = labels.defined() ? labels.to(device()) : labels;
    in.training = training_;
    const MixedOutput m = output_mixture_->forward(in);
    BeitOutput        out;
    out.logits = m.logits;
    out.loss   = m.loss;
    return out;
}

BeitOutput BeitModel::plain_forward(const at::Tensor & pixel_values, const at::Tensor & labels, bool keep_hidden) const {
    BeitOutput out;
    at::Tensor x   = encode(pixel_values, keep_hidden ? &out.hidden : nullptr);
    const double eps = config_.layer_norm_eps;
    if (config_.use_mean_pooling) {
        out.last_hidden = x;
        out.pooled      = layer_norm(x.slice(1, 1).mean(1), pool_norm_weight_, pool_norm_bias_, eps);  // [B, D]
    } else {
        out.last_hidden = layer_norm(x, final_norm_weight_, final_norm_bias_, eps);
        out.pooled      = out.last_hidden.select(1, 0);
    }
    // The head sees the pooled vector as a one-token sequence, so adapters that average over
    // positions (gates) treat it as every other module: [B, 1, D] -> [B, num_labels].
    out.logits = classifier_.forward(out.pooled.unsqueeze(1), AdapterCall{ training_ }).squeeze(1).to(at::kFloat);
    if (labels.defined()) {
        out.loss = at::cross_entropy_loss(out.logits, labels.to(out.logits.device()));
    }
    return out;
}

}  // namespace cgm
