#pragma once
// Golden fixtures from Hugging Face transformers/peft: the folder named by CGM_FIXTURES_DIR
// (default test/fixtures/hf), its index.json, and each fixture's manifest and tensors.
#include "io/safetensors.h"

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cgm::test {

struct Fixture {
    std::string                        name;
    std::string                        kind;
    std::string                        dir;
    nlohmann::json                     manifest;
    std::shared_ptr<SafetensorsReader> tensors;
    double                             atol = 1e-4;
    double                             rtol = 1e-4;

    at::Tensor  get(const std::string & tensor) const { return tensors->tensor(tensor); }
    std::string path(const std::string & relative) const { return dir + "/" + relative; }
};

std::string          fixtures_dir();
nlohmann::json       fixture_index();
// Every fixture of this kind listed in index.json, in index order.
std::vector<Fixture> fixtures_of_kind(const std::string & kind);

// Largest |a - e| - rtol*|e| over all elements (<= atol means "close"), as float64.
double excess_error(const at::Tensor & actual, const at::Tensor & expected, double rtol);

}  // namespace cgm::test

// Close within the fixture's tolerance, with the tensor's name and worst error on failure.
#define CGM_REQUIRE_CLOSE(fixture, what, actual, expected)                                              \
    do {                                                                                                \
        INFO((fixture).name << ": " << (what));                                                         \
        REQUIRE((actual).sizes() == (expected).sizes());                                                \
        const double cgm_excess = cgm::test::excess_error((actual), (expected), (fixture).rtol);        \
        INFO("max |actual - expected| - rtol*|expected| = " << cgm_excess << " (atol " << (fixture).atol \
                                                              << ")");                                  \
        REQUIRE(cgm_excess <= (fixture).atol);                                                          \
    } while (0)
