// A BEiT config.json, read and written back.
#include "fuzz/fuzz_target.h"
#include "models/beit_config.h"

#include <nlohmann/json.hpp>

CGM_FUZZ_TARGET(beit_config) {
    const cgm::BeitConfig c = cgm::BeitConfig::read(cgm::fuzz::write_input("config.json", data, size));
    (void)c.describe();
    (void)c.to_json().dump();
}
