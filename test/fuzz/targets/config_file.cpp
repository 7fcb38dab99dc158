// A --config TOML file, as lora-finetune and as a program no table names.
#include "cli/config_file.h"
#include "fuzz/fuzz_target.h"

CGM_FUZZ_TARGET(config_file) {
    const std::string path = cgm::fuzz::write_input("config.toml", data, size);
    try {
        (void)cgm::read_config_file(path, "lora-finetune");
    } catch (const cgm::Error &) {
        // Read again for another program.
    }
    (void)cgm::read_config_file(path, "custom-program");
}
