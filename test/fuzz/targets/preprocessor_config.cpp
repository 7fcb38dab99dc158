// A preprocessor_config.json; a config that reads is used on a small image. The pixel budget,
// which bounds the sizes a config may ask for, is lowered for the call to keep each run fast.
#include "fuzz/fuzz_target.h"
#include "fuzz/pixel_budget.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

#include <ATen/ops/zeros.h>

CGM_FUZZ_TARGET(preprocessor_config) {
    const cgm::fuzz::PixelBudget    budget(int64_t{ 1 } << 18);
    const cgm::ImageProcessorConfig c =
        cgm::read_image_processor_config(cgm::fuzz::write_input("preprocessor_config.json", data, size));
    (void)cgm::preprocess_image(c, at::zeros({ 5, 7, 3 }, at::kByte));
}
