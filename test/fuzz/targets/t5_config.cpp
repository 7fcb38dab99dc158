// A T5 config.json.
#include "fuzz/fuzz_target.h"
#include "models/t5_config.h"

CGM_FUZZ_TARGET(t5_config) {
    const cgm::T5Config c = cgm::T5Config::read(cgm::fuzz::write_input("config.json", data, size));
    (void)c.describe();
    (void)c.inner_dim();
}
