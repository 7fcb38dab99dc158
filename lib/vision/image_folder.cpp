#include "vision/image_folder.h"

#include "core/error.h"
#include "vision/image_decode.h"

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {
namespace {

// The names of dir's entries that are directories (want_dirs) or regular files, sorted.
std::vector<std::string> sorted_entries(const fs::path & dir, bool want_dirs) {
    std::vector<std::string> names;
    std::error_code          ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (want_dirs ? it->is_directory(ec) : it->is_regular_file(ec)) {
            names.push_back(it->path().filename().string());
        }
    }
    if (ec) {
        fail(dir.string(), "cannot list: " + ec.message());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

LabeledImages read_image_folder(const std::string & dir, const ImageSourceOptions & options) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        fail(dir, fs::exists(dir, ec) ? "not a directory" : "no such directory");
    }
    LabeledImages out;
    out.class_names = options.classes;
    if (out.class_names.empty()) {
        for (auto & name : sorted_entries(dir, true)) {
            if (name[0] != '.') {
                out.class_names.push_back(std::move(name));
            }
        }
        if (out.class_names.empty()) {
            fail(dir, "has no class sub-folders");
        }
    }
    for (size_t label = 0; label < out.class_names.size(); ++label) {
        const fs::path class_dir = fs::path(dir) / out.class_names[label];
        if (std::count(out.class_names.begin(), out.class_names.end(), out.class_names[label]) > 1) {
            fail(class_dir.string(), "class selected twice");
        }
        if (!fs::is_directory(class_dir, ec)) {
            fail(class_dir.string(), "no such class folder");
        }
        int64_t taken = 0, passed = 0;
        for (const auto & name : sorted_entries(class_dir, false)) {
            if (options.per_class > 0 && taken == options.per_class) {
                break;
            }
            const std::string path = (class_dir / name).string();
            at::Tensor        image;
            try {
                image = decode_image_file(path);  // [H, W, 3] uint8
            } catch (const Error & e) {
                out.skip(e.what());
                continue;
            }
            if (passed < options.skip_per_class) {  // counted as per_class counts: decodable images
                ++passed;
                continue;
            }
            out.add(image, static_cast<int64_t>(label), options.image_size, path);
            ++taken;
        }
        if (taken == 0) {
            fail(class_dir.string(), passed > 0 ? "no image left after the first " + std::to_string(passed) + " (--skip-per-class)"
                                                : "no decodable image in the class folder");
        }
    }
    return out;
}

}  // namespace cgm
