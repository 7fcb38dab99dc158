#include "support/fixtures.h"

#include "io/json_file.h"

#include <ATen/ATen.h>

#include <cstdlib>

namespace cgm::test {

std::string fixtures_dir() {
    const char * env = std::getenv("CGM_FIXTURES_DIR");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(CGM_DEFAULT_FIXTURES_DIR);
}

nlohmann::json fixture_index() {
    return read_json_file(fixtures_dir() + "/index.json");
}

std::vector<Fixture> fixtures_of_kind(const std::string & kind) {
    std::vector<Fixture> out;
    const nlohmann::json index = fixture_index();  // must outlive the loop over its items
    for (const auto & [name, entry] : index.items()) {
        if (entry.value("kind", "") != kind) {
            continue;
        }
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
        out.push_back(std::move(f));
    }
    return out;
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
