// T5 properties that the fixtures do not pin down: cache equivalence, chunking, padding.
#include "core/error.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "support/allocation_peak.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

using namespace cgm;
using namespace cgm::test;

namespace {

T5Config small_config(const std::string & ff) {
    return T5Config::from_json({ { "vocab_size", 50 }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 48 },
                                 { "num_layers", 2 }, { "num_decoder_layers", 3 }, { "num_heads", 3 },
                                 { "feed_forward_proj", ff }, { "tie_word_embeddings", ff == "relu" } },
                               "test");
}

at::Tensor random_ids(int64_t b, int64_t t, uint64_t seed) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randint(3, 50, { b, t }, g, at::kLong);
}

}  // namespace

TEST_CASE("decoding one token at a time with the KV cache equals the full decoder pass", "[unit][t5]") {
    for (const std::string ff : { "relu", "gated-gelu" }) {
        INFO(ff);
        const T5Model    model = T5Model::random(small_config(ff), 7);
        const at::Tensor ids   = random_ids(2, 9, 1);
        const at::Tensor mask  = at::ones({ 2, 9 }, at::kLong);
        mask[1].slice(0, 6).fill_(0);
        const at::Tensor dec = random_ids(2, 5, 2);
        const at::Tensor enc = model.encode(ids, mask);
        const at::Tensor full = model.decode(dec, enc, mask);
        T5DecoderCache   cache;
        for (int64_t t = 0; t < 5; ++t) {
            const at::Tensor step = model.decode(dec.slice(1, t, t + 1), enc, mask, &cache);
            REQUIRE(at::allclose(step, full.slice(1, t, t + 1), 1e-5, 1e-5));
        }
        REQUIRE(cache.length == 5);
    }
}

TEST_CASE("query chunking gives the same output for any chunk size", "[unit][t5]") {
    T5Model          model = T5Model::random(small_config("gated-gelu"), 3);
    const at::Tensor ids   = random_ids(2, 13, 4);
    const at::Tensor mask  = at::ones({ 2, 13 }, at::kLong);
    const at::Tensor dec   = random_ids(2, 6, 5);
    const at::Tensor ref   = model.forward(ids, mask, dec).logits;
    for (const int64_t chunk : { 1, 4, 13, 100 }) {
        model.options().q_chunk = chunk;
        INFO("chunk " << chunk);
        REQUIRE(at::allclose(model.forward(ids, mask, dec).logits, ref, 1e-5, 1e-5));
    }
}

TEST_CASE("with query chunks, memory grows linearly with the source length, in inference and in training", "[unit][t5]") {
    const nlohmann::json j = { { "vocab_size", 50 }, { "d_model", 16 }, { "d_kv", 8 }, { "d_ff", 32 }, { "num_layers", 1 },
                               { "num_decoder_layers", 1 }, { "num_heads", 2 }, { "feed_forward_proj", "relu" } };
    T5Model model = T5Model::random(T5Config::from_json(j, "test"), 2);
    // The most tensor memory held at once by one forward pass (and backward, when training).
    const auto peak = [&](int64_t len, bool training) {
        const at::Tensor ids = random_ids(1, len, 3), mask = at::ones({ 1, len }, at::kLong), labels = random_ids(1, 4, 4);
        for (auto & [name, t] : model.named_parameters()) {
            t.requires_grad_(training);
            t.mutable_grad() = at::Tensor();
        }
        AllocationPeak tracker;
        if (training) {
            model.forward(ids, mask, {}, labels).loss.backward();
        } else {
            c10::NoGradGuard no_grad;
            model.forward(ids, mask, {}, labels);
        }
        return static_cast<double>(tracker.peak_bytes());
    };
    for (const bool training : { false, true }) {
        INFO((training ? "training" : "inference"));
        model.options().q_chunk = 32;
        const double short_input = peak(512, training), long_input = peak(1024, training);
        INFO("q-chunk 32: " << short_input << " -> " << long_input << " bytes");
        REQUIRE(long_input < 2.5 * short_input);
        // Without chunks the [S, S] scores dominate and the same doubling costs about 4x: the
        // measure sees a quadratic path.
        model.options().q_chunk = 0;
        const double dense_short = peak(512, training), dense_long = peak(1024, training);
        INFO("dense: " << dense_short << " -> " << dense_long << " bytes");
        REQUIRE(dense_long > 3.5 * dense_short);
    }
}

TEST_CASE("attn_topk leaves the decoder's self-attention dense", "[unit][t5]") {
    // A source of 3 tokens with k = 3 keeps every cross-attention key, while 8 decoder positions
    // would lose keys to a top-3 in their self-attention.
    T5Model          model = T5Model::random(small_config("gated-gelu"), 9);
    const at::Tensor ids = random_ids(2, 3, 1), mask = at::ones({ 2, 3 }, at::kLong), dec = random_ids(2, 8, 2);
    const at::Tensor enc   = model.encode(ids, mask);
    const at::Tensor dense = model.decode(dec, enc, mask);
    model.options().attn_topk = 3;
    REQUIRE(at::equal(model.encode(ids, mask), enc));
    REQUIRE(at::equal(model.decode(dec, enc, mask), dense));
    model.options().attn_topk = 2;  // and top-2 does change the encoder and cross-attention
    REQUIRE(!at::allclose(model.decode(dec, enc, mask), dense, 1e-4, 1e-4));
}

TEST_CASE("a small ff_topk changes the output, d_ff leaves it unchanged", "[unit][t5]") {
    T5Model          model = T5Model::random(small_config("relu"), 11);
    const at::Tensor ids   = random_ids(1, 7, 6);
    const at::Tensor mask  = at::ones({ 1, 7 }, at::kLong);
    const at::Tensor dense = model.encode(ids, mask);
    model.options().ff_topk = 48;
    REQUIRE(at::equal(model.encode(ids, mask), dense));
    model.options().ff_topk = 2;
    REQUIRE(!at::allclose(model.encode(ids, mask), dense, 1e-3, 1e-3));
}

TEST_CASE("padding does not change a row's result: batch of one equals the padded batch", "[unit][t5]") {
    const T5Model    model = T5Model::random(small_config("gated-gelu"), 5);
    const at::Tensor ids   = random_ids(2, 10, 8);
    at::Tensor       mask  = at::ones({ 2, 10 }, at::kLong);
    mask[1].slice(0, 4).fill_(0);
    const T5Generation batch = model.generate(ids, mask, 6);
    const T5Generation alone = model.generate(ids.slice(0, 1, 2).slice(1, 0, 4), mask.slice(0, 1, 2).slice(1, 0, 4), 6);
    REQUIRE(at::equal(batch.ids.slice(0, 1, 2).slice(1, 0, alone.ids.size(1)), alone.ids));
}

TEST_CASE("generation stops when every row has produced EOS", "[unit][t5]") {
    // With a zero lm_head every logit ties and argmax picks id 0, so make id 0 the EOS.
    nlohmann::json j = { { "vocab_size", 20 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 8 }, { "num_layers", 1 },
                         { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" }, { "tie_word_embeddings", false },
                         { "eos_token_id", 0 }, { "pad_token_id", 2 }, { "decoder_start_token_id", 2 } };
    T5Model model = T5Model::random(T5Config::from_json(j, "test"), 1);
    for (auto & [name, t] : model.named_parameters()) {
        if (name == "lm_head.weight") {
            t.zero_();
        }
    }
    const T5Generation gen = model.generate(at::ones({ 3, 4 }, at::kLong), at::ones({ 3, 4 }, at::kLong), 8, true);
    REQUIRE(gen.ids.sizes() == at::IntArrayRef({ 3, 2 }));
    REQUIRE(at::equal(gen.ids.select(1, 0), at::full({ 3 }, 2, at::kLong)));
    REQUIRE(at::equal(gen.ids.select(1, 1), at::zeros({ 3 }, at::kLong)));
    REQUIRE(gen.step_logits.size() == 1);
}

TEST_CASE("generated rows hold only padding after their EOS, on rows that end at different steps", "[unit][t5]") {
    // A vocabulary of 6 makes EOS (id 1) a frequent argmax: over 64 random models about a fifth
    // of the rows end before the last step, at several different steps.
    nlohmann::json j = { { "vocab_size", 6 },  { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 32 }, { "num_layers", 1 },
                         { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" }, { "tie_word_embeddings", false } };
    int64_t rows = 0, ended = 0;
    std::set<int64_t> end_steps;
    for (uint64_t seed = 0; seed < 64; ++seed) {
        const T5Model      model = T5Model::random(T5Config::from_json(j, "test"), seed);
        const at::Tensor   src   = at::randint(2, 6, { 6, 5 }, at::make_generator<at::CPUGeneratorImpl>(seed), at::kLong);
        const T5Generation gen   = model.generate(src, at::ones({ 6, 5 }, at::kLong), 8);
        const auto         ids   = gen.ids.accessor<int64_t, 2>();
        bool               all_done = true;
        for (int64_t r = 0; r < gen.ids.size(0); ++r, ++rows) {
            int64_t eos_at = -1;
            for (int64_t t = 1; t < gen.ids.size(1); ++t) {
                INFO("seed " << seed << " row " << r << " step " << t);
                if (eos_at >= 0) {
                    REQUIRE(ids[r][t] == 0);
                } else if (ids[r][t] == 1) {
                    eos_at = t;
                }
            }
            if (eos_at >= 0 && eos_at + 1 < gen.ids.size(1)) {
                ++ended;
                end_steps.insert(eos_at);
            }
            all_done = all_done && eos_at >= 0;
        }
        // Decoding stops at the step where the last row ends, or after 8 tokens.
        REQUIRE((gen.ids.size(1) == 9 || all_done));
    }
    INFO(ended << " of " << rows << " rows ended before the last step");
    REQUIRE(ended >= 30);
    REQUIRE(end_steps.size() >= 3);
}

TEST_CASE("T5 config in transformers >= 5's form: scale_decoder_outputs decides tied and scaled vs untied", "[unit][t5]") {
    const auto parse = [](nlohmann::json extra) {
        nlohmann::json j = { { "vocab_size", 50 }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 48 }, { "num_layers", 1 },
                             { "num_heads", 4 } };
        j.update(extra);
        return T5Config::from_json(j, "cfg.json").tie_word_embeddings;
    };
    REQUIRE(parse({ { "tie_word_embeddings", false } }) == false);
    REQUIRE(parse({ { "tie_word_embeddings", true } }) == true);
    REQUIRE(parse({ { "tie_word_embeddings", true }, { "scale_decoder_outputs", false } }) == false);
    REQUIRE(parse({ { "tie_word_embeddings", true }, { "scale_decoder_outputs", true } }) == true);
    REQUIRE_THROWS_WITH(parse({ { "scale_decoder_outputs", "no" } }),
                        Catch::Matchers::Contains("cfg.json: 'scale_decoder_outputs' must be true or false"));

    // Each fixture model, its config rewritten as transformers 5 writes it, gives the same logits.
    for (const Fixture & f : fixtures_or_skip("t5", "transformers 5 config form")) {
        const std::string model_dir = f.path(f.manifest["model_dir"]);
        nlohmann::json    config    = read_json_file(model_dir + "/config.json");
        const bool        tied      = config.value("scale_decoder_outputs", config.value("tie_word_embeddings", true));
        config["scale_decoder_outputs"] = tied;
        config["tie_word_embeddings"]   = true;
        TempDir dir;
        write_json_file(dir.file("config.json"), config);
        std::filesystem::copy_file(model_dir + "/model.safetensors", dir.file("model.safetensors"));
        const T5Model  model = T5Model::load(dir.path());
        const T5Output out   = model.forward(f.get("input_ids"), f.get("attention_mask"), f.get("decoder_input_ids"));
        CGM_REQUIRE_CLOSE(f, "logits with a transformers 5 config", out.logits, f.get("logits"));
    }
}

TEST_CASE("T5 config: feed_forward_proj variants and bad values", "[unit][t5]") {
    REQUIRE(small_config("relu").activation == Activation::relu);
    REQUIRE(small_config("gated-gelu").activation == Activation::gelu_tanh);
    REQUIRE(small_config("gated-gelu").gated_ff);
    REQUIRE(small_config("gelu").activation == Activation::gelu);
    REQUIRE(small_config("gated-silu").activation == Activation::silu);
    REQUIRE_THROWS_WITH(small_config("swish-glu"), Catch::Matchers::Contains("unsupported feed_forward_proj"));
    REQUIRE_THROWS_WITH(T5Config::from_json({ { "vocab_size", 5 }, { "d_model", 0 } }, "cfg.json"),
                        Catch::Matchers::Contains("cfg.json: 'd_model' must be >= 1"));
}

TEST_CASE("d_kv * num_heads != d_model computes what a d_model-wide model with a silent extra head does", "[unit][t5]") {
    // 3 heads x 8 = 24 != 32; the same weights in a 4-head model whose 4th head has a zero output
    // projection (and anything in q, k, v, and its position bias) must give the same logits.
    const T5Config narrow_config = small_config("relu");
    REQUIRE(narrow_config.inner_dim() != narrow_config.d_model);
    T5Config wide_config  = narrow_config;
    wide_config.num_heads = narrow_config.d_model / narrow_config.d_kv;
    REQUIRE(wide_config.inner_dim() == wide_config.d_model);
    const T5Model narrow = T5Model::random(narrow_config, 2);
    const T5Model wide   = T5Model::random(wide_config, 9);
    const int64_t inner  = narrow_config.inner_dim();
    const auto    source = narrow.named_parameters();
    c10::NoGradGuard no_grad;
    for (const auto & [name, w] : wide.named_parameters()) {
        const auto it = std::find_if(source.begin(), source.end(), [&](const auto & kv) { return kv.first == name; });
        REQUIRE(it != source.end());
        const at::Tensor & n = it->second;
        if (n.sizes() == w.sizes()) {
            w.copy_(n);
        } else if (name.find("relative_attention_bias") != std::string::npos) {
            w.slice(1, 0, narrow_config.num_heads).copy_(n);  // [buckets, heads]
        } else if (name.size() > 9 && name.compare(name.size() - 9, 9, ".o.weight") == 0) {
            w.zero_();
            w.slice(1, 0, inner).copy_(n);  // [d_model, inner]: the extra head writes nothing
        } else {
            w.slice(0, 0, inner).copy_(n);  // q, k, v: [inner, d_model]
        }
    }
    const at::Tensor ids = random_ids(2, 6, 3), dec = random_ids(2, 4, 4);
    at::Tensor       mask = at::ones({ 2, 6 }, at::kLong);
    mask[1].slice(0, 4).fill_(0);
    const at::Tensor got  = narrow.forward(ids, mask, dec).logits;
    const at::Tensor want = wide.forward(ids, mask, dec).logits;
    REQUIRE(got.sizes() == at::IntArrayRef({ 2, 4, narrow_config.vocab_size }));
    REQUIRE(at::allclose(got, want, 1e-5, 1e-5));
}

TEST_CASE("in training mode T5 applies its dropout, drawn from the seed; without dropout training equals evaluation",
          "[unit][t5]") {
    const at::Tensor ids = random_ids(2, 7, 1), mask = at::ones({ 2, 7 }, at::kLong), labels = random_ids(2, 4, 2);
    for (const double rate : { 0.1, 0.0 }) {
        T5Config config     = small_config("relu");
        config.dropout_rate = rate;
        T5Model          model      = T5Model::random(config, 5);
        c10::NoGradGuard no_grad;
        const at::Tensor evaluation = model.forward(ids, mask, {}, labels).logits;  // [2, 4, V]
        model.set_training(true);
        at::manual_seed(9);
        const at::Tensor first = model.forward(ids, mask, {}, labels).logits;
        const at::Tensor again = model.forward(ids, mask, {}, labels).logits;
        at::manual_seed(9);
        const at::Tensor replay = model.forward(ids, mask, {}, labels).logits;
        INFO("dropout " << rate);
        REQUIRE(at::equal(first, replay));
        REQUIRE(at::equal(first, evaluation) == (rate == 0.0));
        REQUIRE(at::equal(first, again) == (rate == 0.0));
    }
}
