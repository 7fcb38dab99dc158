// X-LoRA against peft's XLoraModel: every fixture of kind "xlora" on a T5 base (scalings of the
// scaling pass, the final hidden state). Bases of other architectures are reported as skipped
// by the fixture index test.
#include "adapters/xlora.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;

TEST_CASE("X-LoRA on a T5 encoder matches peft: scalings and last hidden state", "[parity][xlora]") {
    for (const Fixture & f : fixtures_or_skip("xlora", "X-LoRA parity")) {
        T5Model                 model = T5Model::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
        std::vector<ExpertSpec> experts;
        for (const auto & [name, dir] : f.manifest["expert_dirs"].items()) {
            experts.push_back({ name, f.path(dir.get<std::string>()) });
        }
        LoraMixture       mixture(model.linear_modules(), experts, at::kFloat);
        const std::string xlora_dir = f.path(f.manifest["xlora_dir"]);
        const auto gate = XLoraGate::attach(
            model, mixture, XLoraConfig::from_peft_json(read_json_file(xlora_dir + "/adapter_config.json"), xlora_dir), 0);
        REQUIRE(gate->num_layers() == f.manifest["n_lora_layers"].get<int64_t>());
        load_into(SafetensorsReader(xlora_dir + "/adapter_model.safetensors"), gate->parameters());

        const at::Tensor out = model.encode(f.input("input_ids"), f.input("attention_mask"));
        CGM_REQUIRE_CLOSE(f, "xlora_scalings", gate->routing().scalings, f.get("xlora_scalings"));
        CGM_REQUIRE_CLOSE(f, "last_hidden_state", out, f.get("last_hidden_state"));
    }
}
