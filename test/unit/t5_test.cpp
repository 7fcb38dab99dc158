// T5 properties that the fixtures do not pin down: cache equivalence, chunking, padding.
#include "core/error.h"
#include "models/t5.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace cgm;

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

TEST_CASE("generated rows hold only padding after their EOS", "[unit][t5]") {
    for (uint64_t seed = 0; seed < 6; ++seed) {
        const T5Model      model = T5Model::random(small_config("relu"), seed);
        const T5Generation gen   = model.generate(random_ids(4, 6, seed), at::ones({ 4, 6 }, at::kLong), 8);
        const auto         ids   = gen.ids.accessor<int64_t, 2>();
        bool               all_done = true;
        for (int64_t r = 0; r < gen.ids.size(0); ++r) {
            bool done = false;
            for (int64_t t = 1; t < gen.ids.size(1); ++t) {
                if (done) {
                    REQUIRE(ids[r][t] == 0);
                }
                done = done || ids[r][t] == 1;
            }
            all_done = all_done && done;
        }
        REQUIRE((gen.ids.size(1) == 9 || all_done));
    }
}

TEST_CASE("T5 config: feed_forward_proj variants and bad values", "[unit][t5]") {
    REQUIRE(small_config("relu").activation == FFActivation::relu);
    REQUIRE(small_config("gated-gelu").activation == FFActivation::gelu_tanh);
    REQUIRE(small_config("gated-gelu").gated_ff);
    REQUIRE(small_config("gelu").activation == FFActivation::gelu);
    REQUIRE(small_config("gated-silu").activation == FFActivation::silu);
    REQUIRE_THROWS_WITH(small_config("swish-glu"), Catch::Matchers::Contains("unsupported feed_forward_proj"));
    REQUIRE_THROWS_WITH(T5Config::from_json({ { "vocab_size", 5 }, { "d_model", 0 } }, "cfg.json"),
                        Catch::Matchers::Contains("cfg.json: 'd_model' must be >= 1"));
}

TEST_CASE("d_kv * num_heads may differ from d_model", "[unit][t5]") {
    T5Config config = small_config("relu");  // 3 heads x 8 = 24 != 32
    REQUIRE(config.inner_dim() != config.d_model);
    const T5Model model = T5Model::random(config, 2);
    const auto    out   = model.forward(random_ids(2, 4, 3), at::ones({ 2, 4 }, at::kLong), random_ids(2, 3, 4),
                                        random_ids(2, 3, 5));
    REQUIRE(out.logits.sizes() == at::IntArrayRef({ 2, 3, 50 }));
    REQUIRE(std::isfinite(out.loss.item<double>()));
}
