// An IDX file (plain or gzip), as Fashion-MNIST's images (3 dimensions) and labels (1).
#include "fuzz/fuzz_target.h"
#include "vision/idx_file.h"

CGM_FUZZ_TARGET(idx) {
    const std::string path = cgm::fuzz::write_input("images-idx3-ubyte", data, size);
    try {
        (void)cgm::read_idx_u8(path, 3);
    } catch (const cgm::Error &) {
        // Read again as labels.
    }
    (void)cgm::read_idx_u8(path, 1);
}
