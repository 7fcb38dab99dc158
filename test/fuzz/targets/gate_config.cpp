// A gate folder's gate_config.json, read and written back.
#include "adapters/gate_config.h"
#include "fuzz/fuzz_target.h"

#include <nlohmann/json.hpp>

CGM_FUZZ_TARGET(gate_config) {
    cgm::fuzz::write_input("gate_config.json", data, size);
    const cgm::GateConfig c = cgm::read_gate_config(cgm::fuzz::scratch_dir());
    (void)c.to_json(cgm::fuzz::scratch_dir()).dump();
}
