#include "eval/t5_folder.h"

namespace cgm {

LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run) {
    LoadedT5 loaded{ load_t5_base(base_dir_of(dir, base_override), dtype, device, run), {} };
    loaded.adapters = attach_folder(loaded.base.model, dir, dtype);
    return loaded;
}

}  // namespace cgm
