#pragma once
// An image folder with one sub-folder per class (FireRisk's and the gameplay set's layout):
// DIR/<class>/<any image file>.
#include "vision/labeled_images.h"

#include <string>

namespace cgm {

// options.classes are sub-folder names, in label order (default: every sub-folder not starting
// with '.', sorted by name); a missing one is an Error naming it. Each class takes the first
// per_class images of its files in file-name order; a file that does not decode (corrupt, not an
// image) is skipped and counted, and a class left with no image is an Error.
LabeledImages read_image_folder(const std::string & dir, const ImageSourceOptions & options);

}  // namespace cgm
