// Image datasets for prepare-data: IDX files (plain and gzip) with every header fault named, image
// folders with undecodable files skipped and counted, stratified seeded splits, and the shard
// reader's checks.
#include "core/error.h"
#include "io/safetensors.h"
#include "support/error_of.h"
#include "support/temp_dir.h"
#include "text/splits.h"
#include "vision/fashion_mnist.h"
#include "vision/idx_file.h"
#include "vision/image_dataset.h"
#include "vision/image_folder.h"
#include "vision/pil_resize.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string be32(uint32_t v) {
    return { static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v) };
}

// An IDX file: magic, the sizes, then `data` as given (which may disagree with them).
std::string idx(uint32_t magic, const std::vector<uint32_t> & sizes, const std::string & data) {
    std::string bytes = be32(magic);
    for (const uint32_t s : sizes) {
        bytes += be32(s);
    }
    return bytes + data;
}

// n bytes, all different modulo 256.
std::string ramp(size_t n, int start = 0) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>((start + 7 * static_cast<int>(i)) % 256);
    }
    return s;
}

// Compresses `path` in place to path.gz with the system's gzip.
void gzip(const std::string & path) {
    REQUIRE(std::system(("gzip -n -f '" + path + "'").c_str()) == 0);
}

// The one-line error naming `path` that f throws.
std::string error_naming(const std::string & path, const std::function<void()> & f) {
    const std::string what = error_of(f);
    REQUIRE_THAT(what, Contains(path));
    REQUIRE(what.find('\n') == std::string::npos);
    return what;
}

// A w x h RGB PNG whose pixels start at `seed`.
void write_png(const std::string & path, int w, int h, int seed) {
    const std::string p = ramp(static_cast<size_t>(w * h * 3), seed);
    REQUIRE(stbi_write_png(path.c_str(), w, h, 3, p.data(), w * 3) != 0);
}

at::Tensor png_pixels(int w, int h, int seed) {
    const std::string p = ramp(static_cast<size_t>(w * h * 3), seed);
    return at::from_blob(const_cast<char *>(p.data()), { h, w, 3 }, at::kByte).clone();
}

// The four Fashion-MNIST files in `dir`: `train` then `test` images (h x w) with their labels.
void write_fashion_mnist(const TempDir & dir, const std::vector<uint8_t> & train, const std::vector<uint8_t> & test,
                         uint32_t h, uint32_t w) {
    for (const auto & [prefix, labels] : { std::pair{ "train", &train }, std::pair{ "t10k", &test } }) {
        const auto n = static_cast<uint32_t>(labels->size());
        write_bytes(dir.file(std::string(prefix) + "-images-idx3-ubyte"), idx(0x803, { n, h, w }, ramp(n * h * w)));
        write_bytes(dir.file(std::string(prefix) + "-labels-idx1-ubyte"),
                    idx(0x801, { n }, std::string(labels->begin(), labels->end())));
    }
}

}  // namespace

TEST_CASE("IDX files: plain or gzip, every header fault one line naming the file", "[unit][image-data]") {
    TempDir dir;
    write_bytes(dir.file("ok"), idx(0x803, { 2, 3, 4 }, ramp(24)));
    const at::Tensor plain = read_idx_u8(dir.file("ok"), 3);
    REQUIRE(plain.sizes() == at::IntArrayRef{ 2, 3, 4 });
    REQUIRE(plain.scalar_type() == at::kByte);
    REQUIRE(plain[1][2][3].item<int>() == static_cast<uint8_t>(ramp(24)[23]));
    gzip(dir.file("ok"));
    REQUIRE(at::equal(read_idx_u8(dir.file("ok.gz"), 3), plain));
    write_bytes(dir.file("empty"), idx(0x801, { 0 }, ""));
    REQUIRE(read_idx_u8(dir.file("empty"), 1).numel() == 0);

    const auto bad = [&](const std::string & name, const std::string & bytes, int64_t dims = 3) {
        write_bytes(dir.file(name), bytes);
        return error_naming(dir.file(name), [&] { read_idx_u8(dir.file(name), dims); });
    };
    REQUIRE_THAT(bad("magic", idx(0x0d03, { 2, 3, 4 }, ramp(24))),
                 Contains("bad IDX magic 0x00000d03, expected 0x00000803"));
    REQUIRE_THAT(bad("dims", idx(0x801, { 24 }, ramp(24))), Contains("1 dimensions instead of 3"));
    REQUIRE_THAT(bad("short", std::string(2, '\0'), 1), Contains("too short for an IDX header"));
    REQUIRE_THAT(bad("header", idx(0x803, { 2, 3 }, "")), Contains("truncated IDX header"));
    REQUIRE_THAT(bad("truncated", idx(0x803, { 2, 3, 4 }, ramp(23))),
                 Contains("the dimensions 2x3x4 need 24 bytes of data but the file has 23 (truncated?)"));
    REQUIRE_THAT(bad("long", idx(0x803, { 2, 3, 4 }, ramp(25))), Contains("the file has more"));
    REQUIRE_THAT(bad("huge", idx(0x803, { 0xffffffffu, 0xffffffffu, 4 }, ramp(4))), Contains("declare more than"));
    REQUIRE_THAT(error_naming(dir.file("missing.gz"), [&] { read_idx_u8(dir.file("missing.gz"), 1); }),
                 Contains("cannot open"));
    // A gzip stream cut short is named as such, not read as a short array.
    write_bytes(dir.file("cut"), idx(0x803, { 8, 32, 32 }, ramp(8 * 32 * 32)));
    gzip(dir.file("cut"));
    const std::string whole = read_bytes(dir.file("cut.gz"));
    write_bytes(dir.file("cut.gz"), whole.substr(0, whole.size() - 20));
    REQUIRE_THAT(error_naming(dir.file("cut.gz"), [&] { read_idx_u8(dir.file("cut.gz"), 3); }), Contains("truncated"));
}

TEST_CASE("Fashion-MNIST: classes by name or index, per-class counts train first, gray as RGB, pairs checked",
          "[unit][image-data]") {
    TempDir dir;
    write_fashion_mnist(dir, { 0, 1, 2, 1, 9, 1, 0 }, { 1, 0, 9 }, 2, 3);
    gzip(dir.file("train-images-idx3-ubyte"));  // Debian's names; the others stay plain

    const LabeledImages all = read_fashion_mnist(dir.path(), { {}, 0, 0, 0 });
    REQUIRE(all.class_names == fashion_mnist_classes());
    REQUIRE(all.labels == std::vector<int64_t>{ 0, 1, 2, 1, 9, 1, 0, 1, 0, 9 });
    // Image 3 of the train file: [2, 3] gray, each value in the three channels.
    const at::Tensor gray = at::from_blob(ramp(7 * 6).data() + 3 * 6, { 2, 3 }, at::kByte).clone();
    REQUIRE(all.images[3].sizes() == at::IntArrayRef{ 2, 3, 3 });
    for (int64_t c = 0; c < 3; ++c) {
        REQUIRE(at::equal(all.images[3].select(2, c), gray));
    }

    const LabeledImages some = read_fashion_mnist(dir.path(), { { "boot", "1" }, 2, 5, 0 });
    REQUIRE(some.class_names == std::vector<std::string>{ "boot", "trouser" });
    REQUIRE(some.labels == std::vector<int64_t>{ 1, 1, 0, 0 });  // two trousers and a boot from train, a boot from t10k
    REQUIRE(some.images[0].sizes() == at::IntArrayRef{ 5, 5, 3 });
    REQUIRE(at::equal(some.images[0], pil_resize(all.images[1], 5, 5, Resample::bicubic)));

    // Skipping the first image of each class gives the images the first call left out.
    const LabeledImages rest = read_fashion_mnist(dir.path(), { { "boot", "1" }, 0, 5, 1 });
    REQUIRE(rest.labels == std::vector<int64_t>{ 1, 1, 1, 0 });  // trousers 2 and 3 of train, then t10k: a trouser, a boot
    REQUIRE(at::equal(rest.images[0], pil_resize(all.images[3], 5, 5, Resample::bicubic)));
    REQUIRE(read_fashion_mnist(dir.path(), { { "boot", "1" }, 1, 5, 1 }).labels == std::vector<int64_t>{ 1, 0 });

    REQUIRE_THAT(error_naming(dir.path(), [&] { read_fashion_mnist(dir.path(), { { "hat" }, 0, 0, 0 }); }),
                 Contains("no Fashion-MNIST class 'hat' (known: tshirt,trouser,"));
    REQUIRE_THAT(error_naming(dir.path(), [&] { read_fashion_mnist(dir.path(), { { "bag", "8" }, 0, 0, 0 }); }),
                 Contains("selected twice"));

    const std::string labels = dir.file("t10k-labels-idx1-ubyte");
    write_bytes(labels, idx(0x801, { 3 }, std::string{ 1, 10, 0 }));
    REQUIRE_THAT(error_naming(labels, [&] { read_fashion_mnist(dir.path(), { {}, 0, 0, 0 }); }),
                 Contains("label 10 at index 1 is not below 10"));
    write_bytes(labels, idx(0x801, { 2 }, std::string{ 1, 0 }));
    REQUIRE_THAT(error_naming(labels, [&] { read_fashion_mnist(dir.path(), { {}, 0, 0, 0 }); }),
                 Contains("2 labels for the 3 images of " + dir.file("t10k-images-idx3-ubyte")));
    fs::remove(labels);
    REQUIRE_THAT(error_naming(labels + ".gz", [&] { read_fashion_mnist(dir.path(), { {}, 0, 0, 0 }); }),
                 Contains("cannot open"));
}

TEST_CASE("Image folders: classes by sub-folder, file-name order, undecodable files skipped and counted",
          "[unit][image-data]") {
    TempDir dir;
    for (const std::string c : { "cat", "dog", ".hidden" }) {
        fs::create_directory(dir.file(c));
    }
    write_png(dir.file("cat/b.png"), 6, 4, 1);
    write_png(dir.file("cat/a.png"), 5, 5, 2);
    write_bytes(dir.file("cat/c.png"), "not a png");
    write_png(dir.file("cat/d.png"), 3, 7, 3);
    write_png(dir.file("dog/x.png"), 5, 5, 4);
    write_bytes(dir.file("dog/notes.txt"), "some notes");
    fs::create_directory(dir.file("dog/sub"));

    const LabeledImages all = read_image_folder(dir.path(), { {}, 0, 5, 0 });
    REQUIRE(all.class_names == std::vector<std::string>{ "cat", "dog" });
    REQUIRE(all.labels == std::vector<int64_t>{ 0, 0, 0, 1 });
    REQUIRE(at::equal(all.images[0], png_pixels(5, 5, 2)));  // already 5x5: not resampled
    REQUIRE(at::equal(all.images[1], pil_resize(png_pixels(6, 4, 1), 5, 5, Resample::bicubic)));
    REQUIRE(all.skipped == 2);
    REQUIRE(all.skipped_first.size() == 2);
    REQUIRE_THAT(all.skipped_first[0], Contains(dir.file("cat/c.png") + ": "));
    REQUIRE_THAT(all.skipped_first[1], Contains(dir.file("dog/notes.txt") + ": "));

    // --per-class counts images, not files: the corrupt c.png leaves cat's third place to d.png.
    const LabeledImages three = read_image_folder(dir.path(), { { "dog", "cat" }, 3, 4, 0 });
    REQUIRE(three.class_names == std::vector<std::string>{ "dog", "cat" });
    REQUIRE(three.labels == std::vector<int64_t>{ 0, 1, 1, 1 });
    REQUIRE(three.skipped == 2);
    REQUIRE(at::equal(three.images[3], pil_resize(png_pixels(3, 7, 3), 4, 4, Resample::bicubic)));
    REQUIRE(read_image_folder(dir.path(), { { "cat" }, 2, 4, 0 }).skipped == 0);
    // --skip-per-class counts as --per-class does: a.png is skipped, b.png is the first taken.
    const LabeledImages after_one = read_image_folder(dir.path(), { { "cat" }, 1, 4, 1 });
    REQUIRE(after_one.labels == std::vector<int64_t>{ 0 });
    REQUIRE(at::equal(after_one.images[0], pil_resize(png_pixels(6, 4, 1), 4, 4, Resample::bicubic)));
    REQUIRE_THAT(error_naming(dir.file("cat"), [&] { read_image_folder(dir.path(), { { "cat" }, 0, 4, 3 }); }),
                 Contains("no image left after the first 3 (--skip-per-class)"));

    REQUIRE_THAT(error_naming(dir.file("cat/b.png"), [&] { read_image_folder(dir.path(), { { "cat" }, 0, 0, 0 }); }),
                 Contains("image is 6x4 but the first one is 5x5; with --image-size 0 every image must have one size"));
    REQUIRE(read_image_folder(dir.path(), { { "cat" }, 1, 0, 0 }).images[0].sizes() == at::IntArrayRef{ 5, 5, 3 });
    REQUIRE_THAT(error_naming(dir.file("bird"), [&] { read_image_folder(dir.path(), { { "cat", "bird" }, 0, 5, 0 }); }),
                 Contains("no such class folder"));
    REQUIRE_THAT(error_naming(dir.file("cat"), [&] { read_image_folder(dir.path(), { { "cat", "cat" }, 0, 5, 0 }); }),
                 Contains("class selected twice"));
    REQUIRE_THAT(error_naming(dir.file("nowhere"), [&] { read_image_folder(dir.file("nowhere"), { {}, 0, 5, 0 }); }),
                 Contains("no such directory"));
    REQUIRE_THAT(error_naming(dir.file(".hidden"), [&] { read_image_folder(dir.path(), { { ".hidden" }, 0, 5, 0 }); }),
                 Contains("no decodable image"));
    REQUIRE_THAT(error_naming(dir.file("cat"), [&] { read_image_folder(dir.file("cat"), { {}, 0, 5, 0 }); }),
                 Contains("has no class sub-folders"));
}

TEST_CASE("Stratified splits: every class in proportion in every split, one cut per seed", "[unit][image-data]") {
    const std::vector<int64_t> sizes = { 10, 7, 13, 25 };
    std::vector<int64_t>       labels;
    for (int64_t c = 0; c < 4; ++c) {
        labels.insert(labels.end(), static_cast<size_t>(sizes[static_cast<size_t>(c)]), c);
    }
    std::reverse(labels.begin(), labels.end());  // the split must not lean on input order
    const SplitRatios  ratios = parse_split_ratios("train=0.6,val=0.2,test=0.2");
    const SplitIndices a      = stratified_split(labels, ratios, 7);

    std::multiset<size_t> seen;
    for (const auto & [part, fraction] :
         { std::pair{ &a.train, 0.6 }, std::pair{ &a.val, 0.2 }, std::pair{ &a.test, 0.2 } }) {
        seen.insert(part->begin(), part->end());
        for (int64_t c = 0; c < 4; ++c) {
            const auto   n    = std::count_if(part->begin(), part->end(), [&](size_t i) { return labels[i] == c; });
            const double want = fraction * static_cast<double>(sizes[static_cast<size_t>(c)]);
            INFO("class " << c << ", fraction " << fraction);
            REQUIRE(std::abs(static_cast<double>(n) - want) <= 1.0);
        }
    }
    std::set<size_t> unique(seen.begin(), seen.end());
    REQUIRE(seen.size() == labels.size());
    REQUIRE(unique.size() == labels.size());

    const SplitIndices again = stratified_split(labels, ratios, 7);
    REQUIRE((again.train == a.train && again.val == a.val && again.test == a.test));
    const SplitIndices other = stratified_split(labels, ratios, 8);
    REQUIRE(other.train.size() == a.train.size());
    REQUIRE(other.train != a.train);
    REQUIRE(std::set<size_t>(other.test.begin(), other.test.end()) != std::set<size_t>(a.test.begin(), a.test.end()));
}

TEST_CASE("Image shards: read back as written; wrong dtypes, shapes, counts or labels are one line naming the file",
          "[unit][image-data]") {
    TempDir           dir;
    const std::string file   = dir.file("train.safetensors");
    const at::Tensor  images = at::arange(2 * 3 * 4 * 3, at::kInt).to(at::kByte).view({ 2, 3, 4, 3 });
    const at::Tensor  labels = at::tensor(std::vector<int64_t>{ 1, 0 });
    write_bytes(dir.file("dataset.json"), R"({"classes": ["fire", "smoke"]})");
    write_image_split(file, images, labels);
    const ImageSplit split = read_image_split(dir.path(), "train");
    REQUIRE(at::equal(split.images, images));
    REQUIRE(at::equal(split.labels, labels));
    REQUIRE(split.class_names == std::vector<std::string>{ "fire", "smoke" });

    const auto bad = [&](const NamedTensors & tensors) {
        write_safetensors(file, tensors);
        return error_naming(file, [&] { read_image_split(dir.path(), "train"); });
    };
    REQUIRE_THAT(bad({ { "images", images } }), Contains("has no tensor 'labels'"));
    REQUIRE_THAT(bad({ { "images", images.to(at::kFloat) }, { "labels", labels } }),
                 Contains("tensor 'images' is F32, expected U8 [N, H, W, 3]"));
    REQUIRE_THAT(bad({ { "images", images[0] }, { "labels", labels } }),
                 Contains("tensor 'images' has shape [3, 4, 3], expected [N, H, W, 3]"));
    REQUIRE_THAT(bad({ { "images", images.narrow(3, 0, 2) }, { "labels", labels } }),
                 Contains("has shape [2, 3, 4, 2]"));
    REQUIRE_THAT(bad({ { "images", images }, { "labels", labels.to(at::kInt) } }), Contains("tensor 'labels' is I32"));
    REQUIRE_THAT(bad({ { "images", images }, { "labels", labels.narrow(0, 0, 1) } }),
                 Contains("tensor 'labels' has shape [1], expected [2] (one per image)"));
    REQUIRE_THAT(bad({ { "images", images }, { "labels", at::tensor(std::vector<int64_t>{ 0, 2 }) } }),
                 Contains("label 2 at index 1 is outside the 2 classes of dataset.json"));
    REQUIRE_THAT(error_naming(dir.file("val.safetensors"), [&] { read_image_split(dir.path(), "val"); }),
                 Contains("val.safetensors"));

    write_bytes(dir.file("dataset.json"), R"({"classes": "fire"})");
    REQUIRE_THAT(error_naming(dir.file("dataset.json"), [&] { read_image_split(dir.path(), "train"); }),
                 Contains("'classes' is not a non-empty list of class names"));
    write_bytes(dir.file("dataset.json"), R"({"classes": ["fire", 3]})");
    REQUIRE_THAT(error_naming(dir.file("dataset.json"), [&] { read_image_split(dir.path(), "train"); }),
                 Contains("'classes' holds 3, not a class name"));
}
