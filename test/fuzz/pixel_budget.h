#pragma once
// The image pixel budget lowered for one fuzz input and restored after it, so that an input the
// budget admits decodes or preprocesses fast and within the fuzzer's memory limit.
#include "vision/image_decode.h"

namespace cgm::fuzz {

class PixelBudget {
  public:
    explicit PixelBudget(int64_t pixels) { set_max_image_pixels(pixels); }
    ~PixelBudget() { set_max_image_pixels(saved_); }
    PixelBudget(const PixelBudget &)             = delete;
    PixelBudget & operator=(const PixelBudget &) = delete;

  private:
    int64_t saved_ = max_image_pixels();
};

}  // namespace cgm::fuzz
