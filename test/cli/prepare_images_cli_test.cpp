// prepare-data on images end to end: an image folder and Fashion-MNIST's four IDX files in, three
// shards and dataset.json out, every image decoded and resized once and found in exactly one
// split under its class; bad input exits 1 and bad flags 2, with one line and no output.
#include "support/run_program.h"
#include "support/temp_dir.h"
#include "vision/image_dataset.h"
#include "vision/pil_resize.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A w x h RGB image with pixels from `seed`: [h, w, 3] uint8.
at::Tensor pattern(int w, int h, int seed) {
    return (at::arange(h * w * 3, at::kInt) * 7 + seed).remainder(256).to(at::kByte).view({ h, w, 3 });
}

void write_png(const std::string & path, const at::Tensor & image) {
    const auto h = static_cast<int>(image.size(0)), w = static_cast<int>(image.size(1));
    REQUIRE(stbi_write_png(path.c_str(), w, h, 3, image.data_ptr<uint8_t>(), w * 3) != 0);
}

nlohmann::json read_json(const std::string & path) {
    return nlohmann::json::parse(read_bytes(path));
}

// Exit code `code`, one line on stderr holding `needle`, and no output folder or staging folder.
void require_failure(const ProgramResult & r, int code, const std::string & needle, const std::string & out_dir) {
    INFO("exit code " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == code);
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    REQUIRE_THAT(r.err, Contains(needle));
    REQUIRE(!fs::exists(out_dir));
    for (const auto & entry : fs::directory_iterator(fs::path(out_dir).parent_path())) {
        REQUIRE(entry.path().filename().string().find(".tmp-") == std::string::npos);
    }
}

// Every split of `out` as read_image_split gives it, checked against dataset.json's counts.
std::vector<ImageSplit> read_splits(const std::string & out, const nlohmann::json & info) {
    std::vector<ImageSplit> splits;
    for (const std::string name : { "train", "val", "test" }) {
        splits.push_back(read_image_split(out, name));
        const ImageSplit & s = splits.back();
        REQUIRE(s.images.size(0) == info["counts"][name].get<int64_t>());
        REQUIRE(s.images.size(1) == info["image_size"][0].get<int64_t>());
        REQUIRE(s.images.size(2) == info["image_size"][1].get<int64_t>());
        for (size_t c = 0; c < s.class_names.size(); ++c) {
            const auto n = (s.labels == static_cast<int64_t>(c)).sum().item<int64_t>();
            REQUIRE(n == info["per_class"][s.class_names[c]][name].get<int64_t>());
        }
    }
    return splits;
}

// Each expected image (label, pixels) is in exactly one split, under its label, and nothing else is.
void require_images(const std::vector<ImageSplit> &                    splits,
                    const std::vector<std::pair<int64_t, at::Tensor>> & expected) {
    int64_t total = 0;
    for (const auto & s : splits) {
        total += s.images.size(0);
    }
    REQUIRE(total == static_cast<int64_t>(expected.size()));
    for (const auto & [label, image] : expected) {
        int64_t found = 0;
        for (const auto & s : splits) {
            for (int64_t i = 0; i < s.images.size(0); ++i) {
                found += s.labels[i].item<int64_t>() == label && at::equal(s.images[i], image);
            }
        }
        REQUIRE(found == 1);
    }
}

std::string be32(uint32_t v) {
    return { static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v) };
}

// dir/<prefix>-{images-idx3,labels-idx1}-ubyte.gz of 6x5 gray images; returns the images [n, 6, 5].
at::Tensor write_idx_pair(const TempDir & dir, const std::string & prefix, const std::vector<uint8_t> & labels,
                          int seed) {
    const auto       n      = static_cast<uint32_t>(labels.size());
    const at::Tensor images = pattern(5, 6 * static_cast<int>(n), seed).select(2, 0).contiguous().view({ n, 6, 5 });
    const std::string files[2] = { dir.file(prefix + "-images-idx3-ubyte"), dir.file(prefix + "-labels-idx1-ubyte") };
    write_bytes(files[0], be32(0x803) + be32(n) + be32(6) + be32(5) +
                              std::string(reinterpret_cast<const char *>(images.data_ptr<uint8_t>()), n * 30));
    write_bytes(files[1], be32(0x801) + be32(n) + std::string(labels.begin(), labels.end()));
    for (const auto & f : files) {
        REQUIRE(std::system(("gzip -n -f '" + f + "'").c_str()) == 0);
    }
    return images;
}

}  // namespace

TEST_CASE("prepare-data --format image-folder writes stratified shards of resized images and dataset.json",
          "[cli][prepare-images]") {
    TempDir           tmp;
    const std::string in = tmp.file("photos");
    std::vector<std::pair<int64_t, at::Tensor>> expected;  // after --classes smoke,fire --image-size 8
    for (const auto & [name, label] : { std::pair{ "fire", 1 }, std::pair{ "smoke", 0 }, std::pair{ "water", -1 } }) {
        fs::create_directories(in + "/" + name);
        for (int i = 0; i < 5; ++i) {
            const at::Tensor image = pattern(6 + i, 9 - i, 10 * i + label);
            write_png(in + "/" + name + "/img" + std::to_string(i) + ".png", image);
            if (label >= 0) {
                expected.emplace_back(label, pil_resize(image, 8, 8, Resample::bicubic));
            }
        }
    }
    write_bytes(in + "/fire/broken.png", "\x89PNG\r\n\x1a\n and then nothing");

    const std::string   out = tmp.file("data");
    const ProgramResult r   = run_program("prepare-data", "--format image-folder --input " + in + " --out " + out +
                                                               " --classes smoke,fire --image-size 8 --seed 3"
                                                               " --log-level error");
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_THAT(r.out, Contains("train 6, val 2, test 2"));
    for (const std::string f : { "train.safetensors", "val.safetensors", "test.safetensors", "dataset.json" }) {
        REQUIRE(fs::exists(out + "/" + f));
    }
    const nlohmann::json info = read_json(out + "/dataset.json");
    REQUIRE(info["format"] == "image-folder");
    REQUIRE(info["source"] == fs::path(in).lexically_normal().string());
    REQUIRE(info["classes"] == nlohmann::json{ "smoke", "fire" });
    REQUIRE(info["image_size"] == nlohmann::json{ 8, 8 });
    REQUIRE(info["seed"] == 3);
    REQUIRE(info["splits"] == nlohmann::json{ { "train", 0.6 }, { "val", 0.2 }, { "test", 0.2 } });
    REQUIRE(info["counts"] == nlohmann::json{ { "train", 6 }, { "val", 2 }, { "test", 2 } });
    REQUIRE(info["per_class"]["fire"] == nlohmann::json{ { "train", 3 }, { "val", 1 }, { "test", 1 } });
    REQUIRE(info["skipped_files"]["count"] == 1);
    REQUIRE_THAT(info["skipped_files"]["first"][0].get<std::string>(), Contains(in + "/fire/broken.png: "));
    const std::vector<ImageSplit> splits = read_splits(out, info);
    REQUIRE(splits[0].images.sizes() == at::IntArrayRef{ 6, 8, 8, 3 });
    REQUIRE(splits[0].labels.scalar_type() == at::kLong);
    require_images(splits, expected);

    // The same seed cuts the same way; --split changes the fractions; a rerun with other settings
    // replaces the output only with --overwrite.
    const std::string again = tmp.file("again");
    REQUIRE(run_program("prepare-data", "--format image-folder --input " + in + " --out " + again +
                                            " --classes smoke,fire --image-size 8 --seed 3 --log-level error")
                .exit_code == 0);
    REQUIRE(read_bytes(again + "/val.safetensors") == read_bytes(out + "/val.safetensors"));
    const std::string other = tmp.file("other");
    REQUIRE(run_program("prepare-data", "--format image-folder --input " + in + " --out " + other +
                                            " --per-class 4 --image-size 8 --split train=0.5,val=0.5 --log-level error")
                .exit_code == 0);
    const nlohmann::json other_info = read_json(other + "/dataset.json");
    REQUIRE(other_info["classes"] == nlohmann::json{ "fire", "smoke", "water" });
    REQUIRE(other_info["counts"] == nlohmann::json{ { "train", 6 }, { "val", 6 }, { "test", 0 } });
    REQUIRE(other_info["skipped_files"]["count"] == 1);  // broken.png, before fire's four images
    REQUIRE(run_program("prepare-data", "--format image-folder --input " + in + " --out " + other +
                                            " --classes water --image-size 8 --log-level error")
                .exit_code == 1);
    REQUIRE(run_program("prepare-data", "--format image-folder --input " + in + " --out " + other +
                                            " --classes water --image-size 8 --log-level error --overwrite")
                .exit_code == 0);
    REQUIRE(read_json(other + "/dataset.json")["classes"] == nlohmann::json{ "water" });
}

TEST_CASE("prepare-data on images: bad input exits 1, bad flags 2, one line, nothing written",
          "[cli][prepare-images]") {
    TempDir           tmp;
    const std::string in = tmp.file("photos");
    fs::create_directories(in + "/fire");
    write_png(in + "/fire/a.png", pattern(4, 4, 0));
    write_png(in + "/fire/b.png", pattern(4, 3, 1));
    const std::string out  = tmp.file("data");
    const std::string base = "--format image-folder --out " + out + " --input ";

    require_failure(run_program("prepare-data", base + tmp.file("missing")), 1,
                    tmp.file("missing") + ": no such directory", out);
    require_failure(run_program("prepare-data", base + in + " --classes fire,smoke"), 1,
                    in + "/smoke: no such class folder", out);
    require_failure(run_program("prepare-data", base + in + " --image-size 0"), 1,
                    in + "/fire/b.png: image is 4x3 but the first one is 4x4", out);
    require_failure(run_program("prepare-data", base + in + " --image-size -3"), 2, "--image-size", out);
    require_failure(run_program("prepare-data", "--format wordnet --out " + out + " --max-image-pixels 9"), 2,
                    "--max-image-pixels: not used by --format wordnet", out);
    require_failure(run_program("prepare-data", base + in + " --per-class many"), 2, "--per-class", out);
    require_failure(run_program("prepare-data", base + in + " --limit 3"), 2,
                    "--limit: not used by --format image-folder", out);
    require_failure(run_program("prepare-data", "--format wordnet --out " + out + " --image-size 32"), 2,
                    "--image-size: not used by --format wordnet", out);
    require_failure(run_program("prepare-data", "--format image-folder --out " + out), 1, "--input", out);
}

TEST_CASE("prepare-data --max-image-pixels skips an image over the budget from its header, naming it", "[cli][prepare-images]") {
    TempDir           tmp;
    const std::string in = tmp.file("photos");
    fs::create_directories(in + "/fire");
    write_png(in + "/fire/a.png", pattern(4, 4, 0));  // 16 pixels
    write_png(in + "/fire/b.png", pattern(4, 3, 1));  // 12
    const std::string   out = tmp.file("data");
    const ProgramResult r   = run_program("prepare-data", "--format image-folder --image-size 4 --split train=1,val=0,test=0 --input " + in +
                                                              " --out " + out + " --max-image-pixels 15");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_THAT(r.err, Catch::Contains(in + "/fire/a.png: PNG image of 4x4 = 16 pixels is refused: over the budget of 15 pixels"));
    REQUIRE(read_json(out + "/dataset.json").at("counts").at("train") == 1);
}

TEST_CASE("prepare-data --format fashion-mnist reads Debian's four gzip IDX files, train then t10k",
          "[cli][prepare-images]") {
    TempDir                    tmp;
    const std::vector<uint8_t> train_labels = { 0, 3, 1, 3, 0, 1, 9, 3, 1, 0, 1, 3 };
    const std::vector<uint8_t> test_labels  = { 3, 1, 0, 1, 3 };
    const at::Tensor           train        = write_idx_pair(tmp, "train", train_labels, 1);  // [12, 6, 5]
    const at::Tensor           test         = write_idx_pair(tmp, "t10k", test_labels, 2);    // [5, 6, 5]

    const std::string   out = tmp.file("data");
    const ProgramResult r   = run_program("prepare-data", "--format fashion-mnist --input " + tmp.path() + " --out " +
                                                               out + " --classes dress,trouser,0 --per-class 5"
                                                                     " --image-size 0 --log-level error");
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json info = read_json(out + "/dataset.json");
    REQUIRE(info["format"] == "fashion-mnist");
    REQUIRE(info["classes"] == nlohmann::json{ "dress", "trouser", "tshirt" });
    REQUIRE(info["image_size"] == nlohmann::json{ 6, 5 });
    REQUIRE(info["counts"] == nlohmann::json{ { "train", 8 }, { "val", 3 }, { "test", 3 } });
    REQUIRE(info["skipped_files"]["count"] == 0);

    // The first five of each class, train before t10k; gray repeated over the channels.
    std::vector<std::pair<int64_t, at::Tensor>> expected;
    int64_t                                     taken[10] = {};
    const std::vector<int64_t>                  label_of  = { 2, 1, -1, 0, -1, -1, -1, -1, -1, -1 };
    for (const auto & [images, labels] : { std::pair{ &train, &train_labels }, std::pair{ &test, &test_labels } }) {
        for (size_t i = 0; i < labels->size(); ++i) {
            const uint8_t source = (*labels)[i];
            if (label_of[source] >= 0 && taken[source]++ < 5) {
                const at::Tensor gray = (*images)[static_cast<int64_t>(i)];  // [6, 5]
                expected.emplace_back(label_of[source], gray.unsqueeze(-1).expand({ -1, -1, 3 }).contiguous());
            }
        }
    }
    require_images(read_splits(out, info), expected);

    // --image-size 4 resamples every class; a label of 10 is refused naming its file.
    const std::string small = tmp.file("small");
    REQUIRE(run_program("prepare-data", "--format fashion-mnist --input " + tmp.path() + " --out " + small +
                                            " --image-size 4 --log-level error")
                .exit_code == 0);
    REQUIRE(read_json(small + "/dataset.json")["image_size"] == nlohmann::json{ 4, 4 });
    REQUIRE(read_json(small + "/dataset.json")["classes"].size() == 10);
    write_bytes(tmp.file("t10k-labels-idx1-ubyte"), be32(0x801) + be32(5) + std::string{ 3, 1, 10, 1, 3 });
    REQUIRE(std::system(("gzip -n -f '" + tmp.file("t10k-labels-idx1-ubyte") + "'").c_str()) == 0);
    const std::string bad = tmp.file("bad");
    require_failure(run_program("prepare-data", "--format fashion-mnist --input " + tmp.path() + " --out " + bad), 1,
                    tmp.file("t10k-labels-idx1-ubyte.gz") + ": label 10 at index 2 is not below 10", bad);
    require_failure(run_program("prepare-data", "--format fashion-mnist --input " + tmp.path() + " --out " + bad +
                                                    " --classes dress,hat"),
                    1, "no Fashion-MNIST class 'hat'", bad);
}

TEST_CASE("prepare-data --keep-classes keeps some classes under their labels in the full class list",
          "[cli][prepare-images]") {
    TempDir                    tmp;
    const std::vector<uint8_t> train_labels = { 0, 3, 1, 3, 0, 1, 9, 3, 1, 0, 1, 3 };
    write_idx_pair(tmp, "train", train_labels, 1);
    write_idx_pair(tmp, "t10k", { 3, 1, 0, 1, 3 }, 2);
    const std::string args = "--format fashion-mnist --input " + tmp.path() + " --image-size 0 --log-level error";
    const std::string out  = tmp.file("pair");
    const ProgramResult r  = run_program("prepare-data", args + " --out " + out + " --keep-classes dress,trouser --split train=1,val=0,test=0");
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json info = read_json(out + "/dataset.json");
    REQUIRE(info["classes"].size() == 10);  // the label space stays every class
    REQUIRE(info["kept_classes"] == nlohmann::json{ "dress", "trouser" });
    REQUIRE(info["counts"]["train"] == 4 + 4 + 2 + 2);  // trouser and dress, train then t10k
    const at::Tensor labels = read_splits(out, info).front().labels;  // [12]
    REQUIRE((labels == 1).sum().item<int64_t>() == 6);
    REQUIRE((labels == 3).sum().item<int64_t>() == 6);

    const std::string bad = tmp.file("bad");
    require_failure(run_program("prepare-data", args + " --out " + bad + " --keep-classes dress,hat"), 1,
                    "--keep-classes: 'hat' is not one of the classes (tshirt,trouser,", bad);
    require_failure(run_program("prepare-data", "--format wordnet --out " + bad + " --keep-classes dress"), 2,
                    "--keep-classes: not used by --format wordnet", bad);
}
