// The gate penalties, combiners' pieces and the temperature schedule against hand computations.
#include "adapters/gate_regularisers.h"
#include "adapters/lora_mixture.h"
#include "adapters/output_combiners.h"
#include "models/t5.h"
#include "support/random_experts.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace cgm;

namespace {

double value(const at::Tensor & t) {
    return t.item<double>();
}

}  // namespace

TEST_CASE("gate penalties equal their hand computations", "[unit][gate-penalties]") {
    // I = [1.5, 0.5]: mean 1, unbiased std sqrt(0.5) -> CV^2 = 0.5
    REQUIRE(value(importance_cv2(at::tensor({ 0.5, 0.5, 1.0, 0.0 }).view({ 2, 2 }))) == Approx(0.5));
    REQUIRE(value(importance_cv2(at::full({ 3, 2 }, 0.5))) == Approx(0.0).margin(1e-7));

    // Features 5 apart: D = [[0, 1], [1, 0]] after scaling by the maximum.
    const at::Tensor features = at::tensor({ 0.0, 0.0, 3.0, 4.0 }).view({ 2, 2 });
    const at::Tensor split    = at::tensor({ 1.0, 0.0, 0.0, 1.0 }).view({ 2, 2 });   // different experts
    const at::Tensor together = at::tensor({ 1.0, 0.0, 1.0, 0.0 }).view({ 2, 2 });   // one expert
    // together: same = sum p_i(n) p_i(m) D = 2, / E = 1; different-expert mass 0
    REQUIRE(value(sample_similarity(together, features, 0.7, 0.4)) == Approx(0.7));
    // split: same 0; diff = 2 / (E^2 - E) / B^2 = 0.25
    REQUIRE(value(sample_similarity(split, features, 0.7, 0.4)) == Approx(-0.4 * 0.25));

    // Expert 1 has the lower loss: MSE([0.7, 0.3], [0, 1]) = 0.49
    const at::Tensor nll = at::tensor({ 2.0, 1.0 }).view({ 2, 1 });  // [E, B]
    REQUIRE(value(ideal_gate_mse(at::tensor({ 0.7, 0.3 }).view({ 1, 2 }), nll)) == Approx(0.49));

    REQUIRE(value(mean_entropy(at::tensor({ 0.5, 0.5, 1.0, 0.0 }).view({ 2, 2 }))) == Approx(std::log(2.0) / 2));

    GateRegularisers w;
    w.importance = 2;
    w.entropy    = 3;
    const at::Tensor p = at::tensor({ 0.5, 0.5, 1.0, 0.0 }).view({ 2, 2 });
    REQUIRE(value(gate_penalty(w, p, {}, {})) == Approx(2 * 0.5 + 3 * std::log(2.0) / 2));
}

TEST_CASE("combiner pieces equal their hand computations", "[unit][gate-penalties]") {
    // Escort: [1, 2] -> [1, 4] / 5; softmax at T = 2 of [0, 2 ln 3] -> [1, 3] / 4
    REQUIRE(at::allclose(gate_probabilities(at::tensor({ 1.0f, 2.0f }).view({ 1, 2 }), 1.0, GateTransform::escort),
                         at::tensor({ 0.2f, 0.8f }).view({ 1, 2 })));
    REQUIRE(at::allclose(gate_probabilities(at::tensor({ 0.0f, static_cast<float>(2 * std::log(3.0)) }).view({ 1, 2 }), 2.0,
                                            GateTransform::softmax),
                         at::tensor({ 0.25f, 0.75f }).view({ 1, 2 })));
    REQUIRE(at::allclose(top_k_renormalised(at::tensor({ 0.5, 0.3, 0.2 }).view({ 1, 3 }), 2),
                         at::tensor({ 0.625, 0.375, 0.0 }).view({ 1, 3 })));
    // Jacobs: p = [1, 0], nll = [2, 0] -> -log(exp(-1)) = 1
    REQUIRE(value(jacobs_loss(at::tensor({ 1.0, 0.0 }).view({ 1, 2 }), at::tensor({ 2.0, 0.0 }).view({ 2, 1 }))) ==
            Approx(1.0).margin(1e-9));
    // Loss-gate regression: s = [0, -1], log-likelihoods [-1, -1] -> |1| + |0| = 1
    REQUIRE(value(loss_gate_regression(at::tensor({ 0.0, -1.0 }).view({ 1, 2 }), at::tensor({ 1.0, 1.0 }).view({ 2, 1 }))) ==
            Approx(1.0));
    // Per-example loss over the labelled positions only: z [E=1, B=1, T=2, C=2], second label ignored
    const at::Tensor z = at::tensor({ 0.0, 0.0, 5.0, -5.0 }).view({ 1, 1, 2, 2 });
    REQUIRE(value(expert_nll(z, at::tensor({ 1, -100 }, at::kLong).view({ 1, 2 }))[0][0]) == Approx(std::log(2.0)));
    // The seed's top-1 in training: p_e softmax(z_e) of the argmax expert
    const at::Tensor z2 = at::tensor({ 0.0, 0.0, 0.0, 2.0 }).view({ 2, 1, 2 });  // [E, B, C]
    const at::Tensor scaled = top_1_scaled_probs(z2, at::tensor({ 0.4, 0.6 }).view({ 1, 2 }));
    REQUIRE(at::allclose(scaled, 0.6 * at::softmax(at::tensor({ 0.0, 2.0 }).view({ 1, 2 }), -1)));
}

TEST_CASE("the temperature schedule is the seed's", "[unit][gate-penalties]") {
    // T_{e+1} = max(0.001, T_e / (1 + decay (e - start))) for e > start
    REQUIRE(decayed_temperature(1.0, 1.0, 0, 0) == 1.0);
    REQUIRE(decayed_temperature(1.0, 1.0, 0, 1) == 1.0);
    REQUIRE(decayed_temperature(1.0, 1.0, 0, 2) == Approx(0.5));
    REQUIRE(decayed_temperature(1.0, 1.0, 0, 3) == Approx(0.5 / 3));
    REQUIRE(decayed_temperature(1.0, 0.0, 0, 9) == 1.0);
    REQUIRE(decayed_temperature(1.0, 100.0, 0, 5) == Approx(0.001));
}

TEST_CASE("layer-level gates: the kept weights give the penalties, averaged over modules", "[unit][gate-penalties]") {
    const nlohmann::json config = { { "vocab_size", 40 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 32 }, { "num_layers", 1 },
                                    { "num_heads", 2 },   { "feed_forward_proj", "relu" }, { "dropout_rate", 0.0 } };
    T5Model           model = T5Model::random(T5Config::from_json(config, "test"), 1);
    test::TempDir     dir;
    LoraMixture       mixture(model.linear_modules(), test::random_experts(model, dir), at::kFloat);
    mixture.attach_cgm(MixMode::example, 4, {}, 3);
    mixture.log().keep_live = true;
    at::manual_seed(8);
    const at::Tensor ids = at::randint(3, 40, { 3, 5 }, at::kLong), mask = at::ones({ 3, 5 }, at::kLong);
    const at::Tensor labels = at::randint(3, 40, { 3, 2 }, at::kLong);
    model.forward(ids, mask, {}, labels);  // evaluation mode keeps nothing
    REQUIRE(mixture.log().live.empty());
    model.set_training(true);
    model.forward(ids, mask, {}, labels);
    const std::vector<at::Tensor> live = mixture.log().live;
    REQUIRE(live.size() == mixture.gated_modules().size());
    GateRegularisers w;
    w.importance = 0.5;
    double want  = 0;
    for (const auto & p : live) {
        REQUIRE(p.sizes() == at::IntArrayRef({ 3, 2 }));
        want += 0.5 * value(importance_cv2(p));
    }
    const at::Tensor penalty = mixture.take_penalty(w);
    REQUIRE(value(penalty) == Approx(want / static_cast<double>(live.size())));
    REQUIRE(penalty.requires_grad());
    REQUIRE(mixture.log().live.empty());
}
