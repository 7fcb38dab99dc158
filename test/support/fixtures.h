#pragma once
// Golden fixtures from Hugging Face transformers/peft: the folder named by CGM_FIXTURES_DIR
// (default test/fixtures/hf), its index.json, and each fixture's manifest and tensors.
#include "io/safetensors.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
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

    // An expected value, on the CPU.
    at::Tensor  get(const std::string & tensor) const { return tensors->tensor(tensor); }
    // A model input, on the device the parity tests run on (CGM_TEST_DEVICE).
    at::Tensor  input(const std::string & tensor) const;
    std::string path(const std::string & relative) const { return dir + "/" + relative; }
};

std::string          fixtures_dir();
// The device named by CGM_TEST_DEVICE ("cpu" by default, "cuda" or "cuda:N" on a GPU machine).
c10::Device          test_device();
// Whether that device is usable here; fixtures_or_skip skips (and says why) when it is not.
bool                 test_device_available();
nlohmann::json       fixture_index();
// Why this build does not check a fixture ("" when it does): its kind, or for X-LoRA its base's
// architecture. The one list of what the parity suite covers.
std::string skip_reason(const std::string & kind, const nlohmann::json & manifest, const std::string & dir);
// Every fixture of this kind listed in index.json that this build checks, in index order (none
// when the test device is not available).
std::vector<Fixture> fixtures_of_kind(const std::string & kind);
// The same; when there is none, or CGM_TEST_DEVICE names a device this machine lacks, prints
// "SKIPPING <what>: ..." so that the tests that need them are skipped visibly, never passed.
std::vector<Fixture> fixtures_or_skip(const std::string & kind, const std::string & what);
// The first of fixtures_or_skip(kind, what), or nothing.
std::optional<Fixture> fixture_or_skip(const std::string & kind, const std::string & what);
// The tokenizer folder of a fixture of kind "t5_tokenizer" (manifest key tokenizer_dir).
std::string tokenizer_dir(const Fixture & tokenizer_fixture);

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
