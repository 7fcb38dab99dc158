#include "eval/beit_folder.h"

namespace cgm {

LoadedBeit load_beit_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                         c10::Device device) {
    LoadedBeit loaded{ load_beit_base(base_dir_of(dir, base_override), dtype, device), {} };
    loaded.adapters = attach_folder(loaded.base.model, dir, dtype);
    return loaded;
}

}  // namespace cgm
