// An image file (PNG, JPEG, BMP, GIF). The pixel budget is lowered for the call so that an image
// the budget admits decodes within the fuzzer's memory limit; what is checked is that nothing
// larger is allocated before the image is refused.
#include "fuzz/fuzz_target.h"
#include "fuzz/pixel_budget.h"
#include "vision/image_decode.h"

CGM_FUZZ_TARGET(image_decode) {
    const cgm::fuzz::PixelBudget budget(int64_t{ 1 } << 22);
    (void)cgm::decode_image_file(cgm::fuzz::write_input("image", data, size));
}
