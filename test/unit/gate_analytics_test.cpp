// Gate analytics against hand computations: entropies, means and variances, the importance CV,
// KL(p || mean p) and the mutual information between the chosen expert and the class.
#include "eval/gate_analytics.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using namespace cgm;

namespace {

at::Tensor weights(std::vector<double> values, int64_t experts) {
    const auto n = static_cast<int64_t>(values.size()) / experts;
    return at::tensor(values, at::kDouble).view({ n, experts });
}

}  // namespace

TEST_CASE("a gate that sends each class to its own expert: zero example entropy, ln 2 of mutual information",
          "[unit][gate-analytics]") {
    const GateStats s = gate_stats(weights({ 1, 0, 1, 0, 0, 1, 0, 1 }, 2), { "a", "a", "b", "b" });
    REQUIRE(s.count == 4);
    REQUIRE(s.mean_entropy == Approx(0).margin(1e-12));
    REQUIRE(s.entropy_of_mean == Approx(std::log(2.0)));
    REQUIRE(s.kl_to_mean == Approx(std::log(2.0)));
    REQUIRE(s.expert_class_mi == Approx(std::log(2.0)));
    REQUIRE(s.mean == std::vector<double>{ 0.5, 0.5 });
    REQUIRE(s.variance == std::vector<double>{ 0.25, 0.25 });
    REQUIRE(s.cv == Approx(0).margin(1e-12));

    // The same gate with the classes shuffled across experts: the expert says nothing of the class.
    REQUIRE(gate_stats(weights({ 1, 0, 1, 0, 0, 1, 0, 1 }, 2), { "a", "b", "a", "b" }).expert_class_mi ==
            Approx(0).margin(1e-12));
}

TEST_CASE("gate statistics of soft weights equal the hand computation", "[unit][gate-analytics]") {
    // p = [0.9, 0.1], [0.2, 0.8]: H = 0.325083 and 0.500402; mean p = [0.55, 0.45].
    const GateStats s  = gate_stats(weights({ 0.9, 0.1, 0.2, 0.8 }, 2), { "x", "y" });
    const auto      h  = [](double a) { return -(a * std::log(a) + (1 - a) * std::log(1 - a)); };
    REQUIRE(s.mean_entropy == Approx((h(0.9) + h(0.2)) / 2));
    REQUIRE(s.entropy_of_mean == Approx(h(0.55)));
    REQUIRE(s.kl_to_mean == Approx(h(0.55) - (h(0.9) + h(0.2)) / 2));  // KL to the mean = H(mean) - mean H
    REQUIRE(s.mean[0] == Approx(0.55));
    REQUIRE(s.variance[0] == Approx(0.1225));  // ((0.35)^2 + (0.35)^2) / 2
    REQUIRE(s.cv == Approx(std::sqrt(0.02) / 1.0));  // importance [1.1, 0.9]: std (E - 1) 0.1414, mean 1
    REQUIRE(s.expert_class_mi == Approx(std::log(2.0)));  // x -> expert 0, y -> expert 1

    // Uniform weights: every entropy is ln 3, nothing is learned about the class (ties go to expert 0).
    const GateStats u = gate_stats(at::full({ 5, 3 }, 1.0 / 3, at::kDouble), { "a", "b", "c", "a", "b" });
    REQUIRE(u.mean_entropy == Approx(std::log(3.0)));
    REQUIRE(u.entropy_of_mean == Approx(std::log(3.0)));
    REQUIRE(u.kl_to_mean == Approx(0).margin(1e-12));
    REQUIRE(u.expert_class_mi == Approx(0).margin(1e-12));
}

TEST_CASE("the expert x class table counts each example's chosen expert under its class", "[unit][gate-analytics]") {
    const ExpertClassTable t = expert_class_table(weights({ 0.2, 0.7, 0.1, 0.6, 0.3, 0.1, 0.1, 0.1, 0.8, 0.3, 0.4, 0.3 }, 3),
                                                  { "b", "a", "b", "a" });
    REQUIRE(t.classes == std::vector<std::string>{ "a", "b" });
    REQUIRE(t.counts == std::vector<std::vector<int64_t>>{ { 1, 1, 0 }, { 0, 1, 1 } });

    const nlohmann::json j = to_json(gate_stats(weights({ 1, 0, 0, 1 }, 2), { "a", "b" }), { "left", "right" });
    REQUIRE(j["mean"]["left"] == 0.5);
    REQUIRE(j["count"] == 2);
    REQUIRE_THROWS_WITH(gate_stats(weights({ 1, 0, 0, 1 }, 2), { "a" }),
                        "gate analytics: expected [1, experts] weights (one row per class key), got [2, 2]");
}
