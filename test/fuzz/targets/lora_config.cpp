// A PEFT adapter_config.json, read, matched against typical module paths and written back.
#include "adapters/lora.h"
#include "fuzz/fuzz_target.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

CGM_FUZZ_TARGET(lora_config) {
    const std::string      path = cgm::fuzz::write_input("adapter_config.json", data, size);
    const cgm::LoraConfig c    = cgm::LoraConfig::from_peft_json(cgm::read_json_file(path), path);
    for (const char * module : { "encoder.block.0.layer.0.SelfAttention.q", "beit.encoder.layer.1.attention.attention.value",
                                 "classifier" }) {
        (void)c.targets_module(module);
        (void)c.rank_for(module);
        (void)c.scaling_for(module);
    }
    (void)c.to_peft_json().dump();
}
