// PEFT's modules_to_save on a model with biased linears (a tiny random BEiT and its classifier):
// a trained full copy replaces the module's weight and bias while attached, is written under
// peft's names, read back, merged, and every malformed adapter is one error naming the file.
#include "adapters/lora.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/beit.h"
#include "support/error_of.h"
#include "support/temp_dir.h"
#include "support/tiny_beit.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

BeitModel tiny_beit() {
    return test::tiny_beit({ { "use_relative_position_bias", true }, { "id2label", { { "0", "a" }, { "1", "b" }, { "2", "c" } } } });
}

LoraConfig classifier_saved() {
    LoraConfig c;
    c.targets         = { "query", "value" };
    c.modules_to_save = { "classifier" };
    c.task_type       = "";
    return c;
}

Linear & classifier_of(BeitModel & model) {
    for (const auto & m : model.linear_modules()) {
        if (m.path == "classifier") {
            return *m.linear;
        }
    }
    FAIL("no classifier");
    throw;
}

// The classifier's output on x against x W^T + b.
bool classifier_computes(BeitModel & model, const at::Tensor & w, const at::Tensor & b) {
    c10::NoGradGuard no_grad;
    const at::Tensor x = at::randn({ 5, 16 });
    return at::allclose(classifier_of(model).forward(x, AdapterCall{}), at::addmm(b, x, w.t()), 1e-5, 1e-6);
}

}  // namespace

TEST_CASE("modules_to_save: a trained copy of the classifier replaces it while attached", "[unit][lora-config]") {
    BeitModel        model = tiny_beit();
    const at::Tensor base_w = classifier_of(model).weight.clone(), base_b = classifier_of(model).bias.clone();
    LoraAdapter      adapter = create_lora(model.linear_modules(), classifier_saved(), 1);
    REQUIRE(adapter.layers.size() == 4);  // query and value of 2 layers
    REQUIRE(adapter.saved.size() == 1);
    REQUIRE(adapter.saved[0].first == "classifier");
    const LinearWeights & saved = *adapter.saved[0].second;
    REQUIRE(saved.weight.requires_grad());
    REQUIRE(saved.bias.requires_grad());
    REQUIRE(adapter.parameters().size() == 4 * 2 + 2);
    {
        c10::NoGradGuard no_grad;
        saved.weight.normal_();  // as if trained
        saved.bias.normal_();
    }
    attach_lora(model.linear_modules(), adapter);
    REQUIRE(classifier_computes(model, saved.weight, saved.bias));
    REQUIRE(at::equal(classifier_of(model).weight, base_w));  // the base is untouched
    detach_adapters(model.linear_modules());
    REQUIRE(classifier_computes(model, base_w, base_b));

    // Written under peft's names, read back equal.
    TempDir dir;
    save_lora(adapter, dir.path());
    const nlohmann::json written = read_json_file(dir.file("adapter_config.json"));
    REQUIRE(written["modules_to_save"] == nlohmann::json({ "classifier" }));
    REQUIRE(written["task_type"].is_null());
    const SafetensorsReader file(dir.file("adapter_model.safetensors"));
    REQUIRE(file.contains("base_model.model.classifier.weight"));
    REQUIRE(file.contains("base_model.model.classifier.bias"));
    const LoraAdapter loaded = load_lora(dir.path(), model.linear_modules());
    REQUIRE(loaded.saved.size() == 1);
    REQUIRE(at::equal(loaded.saved[0].second->weight, saved.weight));
    REQUIRE(at::equal(loaded.saved[0].second->bias, saved.bias));

    // Merging copies the saved module in.
    merge_lora(model.linear_modules(), loaded);
    REQUIRE(classifier_of(model).replacement == nullptr);
    REQUIRE(classifier_computes(model, saved.weight, saved.bias));
}

TEST_CASE("modules_to_save: malformed adapters are one error naming the file", "[unit][lora-config]") {
    BeitModel         model   = tiny_beit();
    const LoraAdapter adapter = create_lora(model.linear_modules(), classifier_saved(), 1);
    TempDir           dir;
    save_lora(adapter, dir.path());
    const std::string config_path = dir.file("adapter_config.json"), tensor_path = dir.file("adapter_model.safetensors");
    const nlohmann::json config    = read_json_file(config_path);
    const NamedTensors   tensors   = adapter.peft_tensors();
    const auto           rewrite   = [&](const nlohmann::json & c, const NamedTensors & t) {
        write_json_file(config_path, c);
        write_safetensors(tensor_path, t);
    };
    const auto without = [&](const std::string & name) {
        NamedTensors out;
        for (const auto & kv : tensors) {
            if (kv.first != name) {
                out.push_back(kv);
            }
        }
        return out;
    };
    const auto message = [&] { return error_of([&] { load_lora(dir.path(), model.linear_modules()); }); };

    SECTION("a name that is no linear module") {
        nlohmann::json c     = config;
        c["modules_to_save"] = { "layernorm_before" };
        rewrite(c, tensors);
        REQUIRE(message().rfind(config_path + ": modules_to_save 'layernorm_before' names no linear module", 0) == 0);
    }
    SECTION("a module both adapted and saved") {
        nlohmann::json c     = config;
        c["modules_to_save"] = { "query" };
        rewrite(c, tensors);
        REQUIRE(message().find("is both a LoRA target and in modules_to_save") != std::string::npos);
    }
    SECTION("the saved bias missing") {
        rewrite(config, without("base_model.model.classifier.bias"));
        REQUIRE(message().rfind(tensor_path + ": saved module 'classifier'", 0) == 0);
    }
    SECTION("the saved weight of the wrong shape") {
        NamedTensors t = without("base_model.model.classifier.weight");
        t.emplace_back("base_model.model.classifier.weight", at::zeros({ 2, 16 }));
        rewrite(config, t);
        REQUIRE(message().rfind(tensor_path + ": saved module 'classifier'", 0) == 0);
    }
    SECTION("saved tensors the config does not list") {
        nlohmann::json c     = config;
        c["modules_to_save"] = nullptr;
        rewrite(c, tensors);
        REQUIRE(message().rfind(tensor_path + ": unexpected tensor 'base_model.model.classifier.", 0) == 0);
    }
    REQUIRE(message().find('\n') == std::string::npos);
}
