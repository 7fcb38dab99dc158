#pragma once
// LoRA with PEFT's semantics: y = W x + s * B A dropout(x), s = alpha / r (alpha / sqrt(r) with
// rsLoRA), targets chosen by module name, stored in PEFT's folder layout so `peft` loads it.
#include "io/safetensors.h"
#include "models/linear.h"

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cgm {

// PEFT's module matching: the path equals a target or ends with "." + target.
bool module_matches(const std::string & path, const std::vector<std::string> & targets);

// PEFT's rank_pattern / alpha_pattern from a flag's text "KEY=VALUE,KEY=VALUE": each KEY a regex
// matched against module paths as (.*\.)?KEY (full match), each rank a positive whole number and
// each alpha a positive finite number. An Error naming --rank-pattern / --alpha-pattern otherwise.
std::map<std::string, int64_t> parse_rank_pattern(const std::string & text);
std::map<std::string, double>  parse_alpha_pattern(const std::string & text);

struct LoraConfig {
    int64_t                        r       = 8;
    double                         alpha   = 16.0;
    double                         dropout = 0.0;
    std::vector<std::string>       targets = { "q", "v" };  // module names (suffix match), as PEFT
    std::string                    target_regex;            // PEFT's string form: full-match regex
    bool                           use_rslora = false;
    std::map<std::string, int64_t> rank_pattern;   // per-module overrides (PEFT regex keys)
    std::map<std::string, double>  alpha_pattern;
    std::vector<std::string>       modules_to_save;  // linear modules (suffix match) trained in full
    std::string                    base_model;     // base_model_name_or_path
    std::string                    task_type = "SEQ_2_SEQ_LM";  // "" for PEFT's null (image classifiers)

    bool    targets_module(const std::string & path) const;
    int64_t rank_for(const std::string & path) const;
    double  scaling_for(const std::string & path) const;

    // adapter_config.json; errors name `source`. Features this project does not implement
    // (DoRA, biases, fan_in_fan_out, layer selection) are refused rather than ignored.
    static LoraConfig from_peft_json(const nlohmann::json & j, const std::string & source);
    nlohmann::json    to_peft_json() const;
};

class LoraLayer : public LinearAdapter {
  public:
    LoraLayer(at::Tensor a, at::Tensor b, double scaling, double dropout);
    // x: [..., d_in] -> s * B A dropout(x): [..., d_out]
    at::Tensor delta(const at::Tensor & x, const AdapterCall & call) const override;

    at::Tensor A;  // [r, d_in]
    at::Tensor B;  // [d_out, r]
    double     scaling;
    double     dropout;
};

// One adapter: its config, a LoRA layer per adapted module path, and the full copies of the
// modules it saves (PEFT's modules_to_save: a new classifier head).
struct LoraAdapter {
    LoraConfig                                                           config;
    std::vector<std::pair<std::string, std::shared_ptr<LoraLayer>>>     layers;
    std::vector<std::pair<std::string, std::shared_ptr<LinearWeights>>> saved;

    // PEFT tensor names: base_model.model.<path>.lora_{A,B}.weight, base_model.model.<saved>.{weight,bias}
    NamedTensors            peft_tensors() const;
    std::vector<at::Tensor> parameters() const;  // A and B of every layer, the saved modules' tensors
    // Per input row of the module at `path`: 2 r (d_in + d_out) for B A x, 0 if not adapted.
    double flops_per_row(const std::string & path) const;
};

// Fresh LoRA layers on every module the config targets: A ~ kaiming_uniform(a=sqrt(5)), B = 0;
// float32 copies of the modules it saves. Every target name, and every rank/alpha pattern key, must
// match a module (PEFT: "Target modules {...} not found in the base model"): an Error naming
// --targets, --rank-pattern or --alpha-pattern and the names that match nothing.
LoraAdapter create_lora(const std::vector<NamedLinear> & modules, const LoraConfig & config, uint64_t seed);

// A folder given as an adapter that has no adapter_config.json but is a base model, a gate or a
// dataset: an Error naming the folder and what it is, rather than "adapter_config.json: cannot open".
void require_adapter_folder(const std::string & dir);

// Reads an adapter folder (adapter_config.json + adapter_model.safetensors) and checks it fits
// `modules` (every layer's module exists, A/B shapes agree with the weight and the rank), after
// require_adapter_folder(dir).
LoraAdapter load_lora(const std::string & dir, const std::vector<NamedLinear> & modules,
                      c10::ScalarType dtype = c10::kFloat);

// Writes adapter_config.json + adapter_model.safetensors into `dir` (created if needed), each
// file atomically.
void save_lora(const LoraAdapter & adapter, const std::string & dir);

// Sets each adapted module's LoRA layer and each saved module's replacement weights.
void attach_lora(const std::vector<NamedLinear> & modules, const LoraAdapter & adapter);
void detach_adapters(const std::vector<NamedLinear> & modules);

// Folds s * B A into each adapted weight (W <- W + s B A), copies the saved modules' weights in,
// and detaches the adapter.
void merge_lora(const std::vector<NamedLinear> & modules, const LoraAdapter & adapter);

}  // namespace cgm
