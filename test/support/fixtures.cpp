#include "support/fixtures.h"

#include "core/error.h"
#include "io/json_file.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <set>

namespace cgm::test {
namespace {

Fixture open_fixture(const std::string & name, const std::string & kind) {
    Fixture f;
    f.name     = name;
    f.kind     = kind;
    f.dir      = fixtures_dir() + "/" + name;
    f.manifest = read_json_file(f.dir + "/manifest.json");
    f.tensors  = std::make_shared<SafetensorsReader>(f.path(f.manifest.value("tensor_file", "tensors.safetensors")));
    if (f.manifest.contains("tolerance")) {
        f.atol = f.manifest["tolerance"].value("atol", f.atol);
        f.rtol = f.manifest["tolerance"].value("rtol", f.rtol);
    }
    return f;
}

}  // namespace

c10::Device test_device() {
    const char *      env  = std::getenv("CGM_TEST_DEVICE");
    const std::string name = env != nullptr && *env != '\0' ? env : "cpu";
    try {
        const c10::Device device(name);  // also takes other backends' names: refused below
        if (device.is_cpu() || device.is_cuda()) {
            return device;
        }
    } catch (const std::exception &) {
    }
    fail("CGM_TEST_DEVICE", "'" + name + "' is not cpu, cuda or cuda:N");
}

bool test_device_available() {
    const c10::Device d = test_device();
    return d.is_cpu() || (d.is_cuda() && at::hasCUDA() && d.index() < static_cast<int>(at::getNumGPUs()));
}

at::Tensor Fixture::input(const std::string & tensor) const {
    return get(tensor).to(test_device());
}

std::string fixtures_dir() {
    const char * env = std::getenv("CGM_FIXTURES_DIR");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(CGM_DEFAULT_FIXTURES_DIR);
}

nlohmann::json fixture_index() {
    return read_json_file(fixtures_dir() + "/index.json");
}

std::string skip_reason(const std::string & kind, const nlohmann::json & manifest, const std::string & dir) {
    static const std::set<std::string> checked = { "t5",    "t5_lora", "t5_lora_mix", "t5_tokenizer",
                                                   "xlora", "beit",    "beit_lora",   "beit_image_processor" };
    if (!checked.count(kind)) {
        return "kind " + kind + ": not supported yet";
    }
    if (kind == "xlora") {
        const std::string base_dir = dir + "/" + manifest.value("base_model_dir", "base");
        const std::string type     = read_json_file(base_dir + "/config.json").value("model_type", "?");
        if (type != "t5") {
            return "X-LoRA on a " + type + " base: only T5 bases are supported";
        }
    }
    return "";
}

std::vector<Fixture> fixtures_of_kind(const std::string & kind) {
    std::vector<Fixture> out;
    if (!test_device_available()) {
        return out;  // fixtures_or_skip says so
    }
    const nlohmann::json index = fixture_index();  // must outlive the loop over its items
    for (const auto & [name, entry] : index.items()) {
        if (entry.value("kind", "") != kind) {
            continue;
        }
        Fixture f = open_fixture(name, kind);
        if (skip_reason(kind, f.manifest, f.dir).empty()) {
            out.push_back(std::move(f));
        }
    }
    return out;
}

std::vector<Fixture> fixtures_or_skip(const std::string & kind, const std::string & what) {
    if (!test_device_available()) {
        std::printf("SKIPPING %s: CGM_TEST_DEVICE=%s, which this machine does not have\n", what.c_str(),
                    test_device().str().c_str());
        std::fflush(stdout);
        return {};
    }
    std::vector<Fixture> found = fixtures_of_kind(kind);
    if (found.empty()) {
        std::printf("SKIPPING %s: no fixture of kind %s in %s\n", what.c_str(), kind.c_str(), fixtures_dir().c_str());
        std::fflush(stdout);
    }
    return found;
}

std::optional<Fixture> fixture_or_skip(const std::string & kind, const std::string & what) {
    std::vector<Fixture> found = fixtures_or_skip(kind, what);
    if (found.empty()) {
        return std::nullopt;
    }
    return std::move(found.front());
}

std::string tokenizer_dir(const Fixture & f) {
    return f.path(f.manifest.value("tokenizer_dir", "tokenizer"));
}

double excess_error(const at::Tensor & actual, const at::Tensor & expected, double rtol) {
    const at::Tensor a = actual.detach().to(at::kCPU, at::kDouble);
    const at::Tensor e = expected.detach().to(at::kCPU, at::kDouble);
    if (a.numel() == 0) {
        return 0.0;
    }
    return ((a - e).abs() - rtol * e.abs()).max().item<double>();
}

}  // namespace cgm::test
