// X-LoRA against peft's XLoraModel: every fixture of kind "xlora" on a T5 base (scalings of the
// scaling pass, the final hidden state). Bases of other architectures are reported as skipped.
#include "adapters/xlora.h"
#include "io/json_file.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cstdio>

using namespace cgm;
using namespace cgm::test;

TEST_CASE("X-LoRA on a T5 encoder matches peft: scalings and last hidden state", "[parity][xlora]") {
    int checked = 0;
    for (const Fixture & f : fixtures_of_kind("xlora")) {
        const auto base_config = read_json_file(f.path(f.manifest["base_model_dir"].get<std::string>() + "/config.json"));
        if (base_config.value("model_type", "") != "t5") {
            std::printf("parity: SKIPPING %s (X-LoRA on %s: only T5 bases are supported)\n", f.name.c_str(),
                        base_config.value("model_type", "?").c_str());
            continue;
        }
        T5Model                 model = T5Model::load(f.path(f.manifest["base_model_dir"]));
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

        const at::Tensor out = model.encode(f.get("input_ids"), f.get("attention_mask"));
        CGM_REQUIRE_CLOSE(f, "xlora_scalings", gate->routing().scalings, f.get("xlora_scalings"));
        CGM_REQUIRE_CLOSE(f, "last_hidden_state", out, f.get("last_hidden_state"));
        ++checked;
    }
    REQUIRE(checked > 0);
}
