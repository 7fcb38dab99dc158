// prepare-data: raw datasets in, normalized splits out: multiple-choice QA as
// DIR/{train,val,test}.jsonl, images as DIR/{train,val,test}.safetensors; both with DIR/dataset.json.
#include "cli/program.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "text/dataset_readers.h"
#include "text/splits.h"
#include "text/wordnet.h"
#include "vision/fashion_mnist.h"
#include "vision/image_decode.h"
#include "vision/image_dataset.h"
#include "vision/image_folder.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

struct Args {
    std::string              format;
    std::vector<std::string> inputs;
    std::string              out;
    std::string              domain;
    std::string              split;  // empty: kTextSplit or kImageSplit, by format
    int64_t                  limit = 0;
    bool                     strict = false;
    bool                     include_images = false;
    std::string              domains;  // keep only these (comma-separated); empty: all
    std::string              classes;  // image formats: comma-separated, in label order; empty: all
    std::string              keep_classes;  // image formats: only these of `classes`, labels unchanged
    int64_t                  per_class  = 0;
    int64_t                  skip_per_class = 0;
    int64_t                  image_size = 224;  // BEiT's input size
    int64_t                  max_pixels = kDefaultMaxImagePixels;
};

const char * const kTextSplit  = "train=0.8,val=0.1,test=0.1";
const char * const kImageSplit = "train=0.6,val=0.2,test=0.2";  // the seed's 2400/800/800 of 4 x 1000

bool is_image_format(const std::string & format) {
    return format == "image-folder" || format == "fashion-mnist";
}

std::vector<ReadResult> read_inputs(const Args & a, uint64_t seed) {
    ReadOptions options{ a.domain, a.strict, a.include_images };
    std::vector<ReadResult> results;
    if (a.format == "wordnet") {
        WordnetOptions w;
        w.seed       = seed;
        w.per_domain = a.limit > 0 ? a.limit : w.per_domain;
        if (!a.inputs.empty()) {
            w.dir = a.inputs.front();
        }
        results.push_back({ generate_wordnet_mcq(w), {}, 0, "" });
        return results;
    }
    if (a.inputs.empty()) {
        fail("--input", "required for --format " + a.format);
    }
    for (const auto & path : a.inputs) {
        if (a.format == "commonsenseqa") {
            results.push_back(read_commonsenseqa(path, options));
        } else if (a.format == "medqa") {
            results.push_back(read_medqa(path, options));
        } else if (a.format == "unifiedqa") {
            results.push_back(read_unifiedqa(path, options));
        } else if (a.format == "mcq-jsonl") {
            results.push_back(read_mcq_records(path, options));
        } else if (a.format == "scienceqa") {
            for (auto & r : read_scienceqa(path, options)) {
                results.push_back(std::move(r));
            }
        }
        if (a.limit > 0 && static_cast<int64_t>(results.back().records.size()) > a.limit) {
            results.back().records.resize(static_cast<size_t>(a.limit));
        }
    }
    return results;
}

// Why no record is left, for the error: the bad records skipped (how many, and the first with its
// reason: without it a file of the wrong format says nothing more), the image questions skipped,
// or the --domains filter.
std::string no_usable_records(const std::vector<BadRecord> & bad, int64_t skipped_images, size_t read,
                              const std::string & domains) {
    std::vector<std::string> why;
    if (!bad.empty()) {
        why.push_back(std::to_string(bad.size()) + " skipped; first: " + bad.front().to_string());
    }
    if (skipped_images > 0) {
        why.push_back(std::to_string(skipped_images) + " questions with an image skipped (--include-images keeps them)");
    }
    if (read > 0 && !domains.empty()) {
        why.push_back("none of the " + std::to_string(read) + " records read is in --domains " + domains);
    }
    std::string out = "no usable records";
    for (size_t i = 0; i < why.size(); ++i) {
        out += (i == 0 ? " (" : "; ") + why[i] + (i + 1 == why.size() ? ")" : "");
    }
    return out;
}

void prepare(const Args & a, uint64_t seed) {
    const std::string       split   = a.split.empty() ? kTextSplit : a.split;
    const SplitRatios       ratios  = parse_split_ratios(split);
    std::vector<ReadResult> results = read_inputs(a, seed);

    // Sources that name their splits (train/dev/test files, ScienceQA's split field) keep them.
    bool keep = a.format != "wordnet";
    for (const auto & r : results) {
        keep = keep && !r.split.empty();
    }
    Splits                 splits;
    std::vector<BadRecord> bad;
    int64_t                skipped_images = 0;
    size_t                 read           = 0;
    std::vector<McqRecord> pooled;
    for (auto & r : results) {
        bad.insert(bad.end(), r.bad.begin(), r.bad.end());
        skipped_images += r.skipped_images;
        read += r.records.size();
        auto & target = !keep ? pooled : r.split == "train" ? splits.train : r.split == "val" ? splits.val : splits.test;
        target.insert(target.end(), r.records.begin(), r.records.end());
    }
    if (!keep) {
        splits = split_records(pooled, ratios, seed);
    }
    if (!a.domains.empty()) {
        const std::vector<std::string> wanted = split_list(a.domains);
        for (auto * split : { &splits.train, &splits.val, &splits.test }) {
            split->erase(std::remove_if(split->begin(), split->end(),
                                        [&](const McqRecord & r) {
                                            return std::find(wanted.begin(), wanted.end(), r.domain) == wanted.end();
                                        }),
                         split->end());
        }
    }
    if (splits.train.empty() && splits.val.empty() && splits.test.empty()) {
        fail(a.inputs.empty() ? a.format : a.inputs.front(), no_usable_records(bad, skipped_images, read, a.domains));
    }

    nlohmann::ordered_json info;
    info["format"]  = a.format;
    info["sources"] = a.inputs;
    info["seed"]    = seed;
    info["splits"]  = keep ? nlohmann::ordered_json("kept from the sources")
                           : nlohmann::ordered_json({ { "train", ratios.train }, { "val", ratios.val }, { "test", ratios.test } });
    std::map<std::string, std::map<std::string, int64_t>> per_domain;
    int64_t                                               unlabeled = 0;
    for (const auto & [name, records] : { std::pair<const char *, const std::vector<McqRecord> *>{ "train", &splits.train },
                                          { "val", &splits.val }, { "test", &splits.test } }) {
        info["counts"][name] = records->size();
        for (const auto & r : *records) {
            ++per_domain[r.domain][name];
            unlabeled += r.label < 0;
        }
    }
    info["domains"]        = per_domain;
    info["unlabeled"]      = unlabeled;
    info["skipped_images"] = skipped_images;
    info["bad_records"]["count"] = bad.size();
    info["bad_records"]["first"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < bad.size() && i < 20; ++i) {
        info["bad_records"]["first"].push_back(bad[i].to_string());
    }

    StagedDirectory out(a.out);
    write_mcq_jsonl((fs::path(out.path()) / "train.jsonl").string(), splits.train);
    write_mcq_jsonl((fs::path(out.path()) / "val.jsonl").string(), splits.val);
    write_mcq_jsonl((fs::path(out.path()) / "test.jsonl").string(), splits.test);
    write_text_atomic((fs::path(out.path()) / "dataset.json").string(), info.dump(2) + "\n");
    out.commit();

    for (size_t i = 0; i < bad.size() && i < 5; ++i) {
        spdlog::warn("skipped {}", bad[i].to_string());
    }
    if (bad.size() > 5) {
        spdlog::warn("... {} bad records in all (listed in dataset.json)", bad.size());
    }
    std::printf("%s: train %zu, val %zu, test %zu (%s; %zu domain%s, %zu bad records skipped%s) -> %s\n", a.format.c_str(),
                splits.train.size(), splits.val.size(), splits.test.size(),
                keep ? "splits kept from the sources" : ("random split " + split).c_str(), per_domain.size(),
                per_domain.size() == 1 ? "" : "s", bad.size(),
                skipped_images ? (", " + std::to_string(skipped_images) + " image questions skipped").c_str() : "",
                a.out.c_str());
}

// images[i] for each i of `indices`, stacked: [n, H, W, 3] uint8. Each image is released once
// copied, so the data is held about once, not twice.
at::Tensor take_images(std::vector<at::Tensor> & images, const std::vector<size_t> & indices, int64_t h, int64_t w) {
    at::Tensor out = at::empty({ static_cast<int64_t>(indices.size()), h, w, 3 }, at::kByte);
    for (size_t k = 0; k < indices.size(); ++k) {
        out[static_cast<int64_t>(k)].copy_(images[indices[k]]);
        images[indices[k]].reset();
    }
    return out;
}

// Drops the images of every class not in `keep` (class names); labels keep their positions in the
// full class list, so that sets of different classes share one label space (experts of one head).
void keep_only(LabeledImages & data, const std::vector<std::string> & keep) {
    if (keep.empty()) {
        return;
    }
    std::vector<bool> kept(data.class_names.size(), false);
    for (const auto & name : keep) {
        const auto it = std::find(data.class_names.begin(), data.class_names.end(), name);
        if (it == data.class_names.end()) {
            std::string names;
            for (const auto & c : data.class_names) {
                names += (names.empty() ? "" : ",") + c;
            }
            fail("--keep-classes", "'" + name + "' is not one of the classes (" + names + ")");
        }
        kept[static_cast<size_t>(it - data.class_names.begin())] = true;
    }
    size_t n = 0;
    for (size_t i = 0; i < data.images.size(); ++i) {
        if (kept[static_cast<size_t>(data.labels[i])]) {
            data.images[n] = std::move(data.images[i]);
            data.labels[n] = data.labels[i];
            ++n;
        }
    }
    data.images.resize(n);
    data.labels.resize(n);
}

void prepare_images(const Args & a, uint64_t seed) {
    const std::string split  = a.split.empty() ? kImageSplit : a.split;
    const SplitRatios ratios = parse_split_ratios(split);
    if (a.inputs.size() > 1 || (a.inputs.empty() && a.format == "image-folder")) {
        fail("--input", "--format " + a.format + " reads one folder" +
                            (a.format == "fashion-mnist" ? std::string(" (default ") + kFashionMnistDir + ")" : ""));
    }
    const std::string        source  = a.inputs.empty() ? kFashionMnistDir : a.inputs.front();
    const ImageSourceOptions options = { split_list(a.classes), a.per_class, a.image_size, a.skip_per_class };
    LabeledImages            data    = a.format == "image-folder" ? read_image_folder(source, options)
                                                                  : read_fashion_mnist(source, options);
    keep_only(data, split_list(a.keep_classes));
    if (data.images.empty()) {
        fail(source, "no images of the selected classes");
    }
    const int64_t      h   = data.images.front().size(0);
    const int64_t      w   = data.images.front().size(1);
    const SplitIndices idx = stratified_split(data.labels, ratios, seed);

    const std::vector<std::pair<std::string, const std::vector<size_t> *>> parts = {
        { "train", &idx.train }, { "val", &idx.val }, { "test", &idx.test }
    };

    nlohmann::ordered_json info;
    info["format"]     = a.format;
    info["source"]     = fs::absolute(source).lexically_normal().string();
    info["classes"]    = data.class_names;
    if (!a.keep_classes.empty()) {
        info["kept_classes"] = split_list(a.keep_classes);
    }
    info["image_size"] = { h, w };
    info["seed"]       = seed;
    info["skip_per_class"] = a.skip_per_class;  // images taken: after the first skip_per_class of each class
    info["splits"]     = { { "train", ratios.train }, { "val", ratios.val }, { "test", ratios.test } };
    for (const auto & [name, indices] : parts) {
        info["counts"][name] = indices->size();
    }
    info["per_class"] = nlohmann::ordered_json::object();
    for (size_t c = 0; c < data.class_names.size(); ++c) {
        for (const auto & [name, indices] : parts) {
            const auto in_class = [&](size_t i) { return data.labels[i] == static_cast<int64_t>(c); };
            info["per_class"][data.class_names[c]][name] = std::count_if(indices->begin(), indices->end(), in_class);
        }
    }
    info["skipped_files"]["count"] = data.skipped;
    info["skipped_files"]["first"] = data.skipped_first;

    StagedDirectory out(a.out);
    for (const auto & [name, indices] : parts) {
        std::vector<int64_t> labels;
        for (const size_t i : *indices) {
            labels.push_back(data.labels[i]);
        }
        // images: [n, H, W, 3] uint8, labels: [n] int64
        write_image_split((fs::path(out.path()) / (name + ".safetensors")).string(),
                          take_images(data.images, *indices, h, w), at::tensor(labels, at::kLong));
    }
    write_text_atomic((fs::path(out.path()) / "dataset.json").string(), info.dump(2) + "\n");
    out.commit();

    for (size_t i = 0; i < data.skipped_first.size() && i < 5; ++i) {
        spdlog::warn("skipped {}", data.skipped_first[i]);
    }
    if (data.skipped > 5) {
        spdlog::warn("... {} files skipped in all (the first {} listed in dataset.json)", data.skipped,
                     data.skipped_first.size());
    }
    std::printf("%s: train %zu, val %zu, test %zu (random split %s stratified by class; %zu class%s, %lldx%lld, "
                "%lld files skipped) -> %s\n",
                a.format.c_str(), idx.train.size(), idx.val.size(), idx.test.size(), split.c_str(),
                data.class_names.size(), data.class_names.size() == 1 ? "" : "es", static_cast<long long>(h),
                static_cast<long long>(w), static_cast<long long>(data.skipped), a.out.c_str());
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App app("Turn raw datasets into normalized train/val/test splits: multiple-choice QA as jsonl, images as "
                 "safetensors shards (images uint8 [N, H, W, 3], labels int64 [N]), each with a dataset.json",
                 "prepare-data");
    CommonOptions common;
    Args          a;
    app.add_option("--format", a.format,
                   "Input format. Text: commonsenseqa, medqa, scienceqa, unifiedqa, mcq-jsonl, wordnet. Images: "
                   "image-folder (one sub-folder of images per class), fashion-mnist (Debian's IDX files)")
        ->required()
        ->check(CLI::IsMember({ "commonsenseqa", "medqa", "scienceqa", "unifiedqa", "mcq-jsonl", "wordnet",
                                "image-folder", "fashion-mnist" }));
    app.add_option("--input", a.inputs,
                   "Input file(s); split names in file names (train/dev/test) are kept. wordnet: the WordNet folder "
                   "(default /usr/share/wordnet). image-folder: the folder of class sub-folders. fashion-mnist: the "
                   "folder of the four IDX files, .gz or not (default " +
                       std::string(kFashionMnistDir) + ")")->type_name(kPathType);
    app.add_option("--out", a.out, "Output folder")->type_name(kPathType)->required();
    app.add_option("--domain", a.domain, "Domain name for every record (default: the format's name)");
    app.add_option("--split", a.split,
                   std::string("Ratios when the sources have no splits (default ") + kTextSplit + "; images " +
                       kImageSplit + ", stratified by class)");
    app.add_option("--limit", a.limit, "At most N records per input file (wordnet: per domain, default 1000)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--domains", a.domains, "Keep only these domains (comma-separated; splits are made before filtering)");
    app.add_flag("--strict", a.strict, "Stop at the first bad record instead of skipping it");
    app.add_flag("--include-images", a.include_images, "ScienceQA: keep questions that come with an image");
    app.add_option("--classes", a.classes,
                   "Images: these classes, comma-separated, in label order (image-folder: sub-folder names, default "
                   "all sorted; fashion-mnist: tshirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,boot "
                   "or 0-9, default all)");
    app.add_option("--keep-classes", a.keep_classes,
                   "Images: keep only these of --classes (comma-separated names); labels stay their positions among "
                   "--classes, so sets of different classes share one head");
    app.add_option("--per-class", a.per_class,
                   "Images: the first N images of each class (file-name order; fashion-mnist: train then t10k; 0: all)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--skip-per-class", a.skip_per_class,
                   "Images: leave out the first N images of each class (in --per-class's order), e.g. to take "
                   "images disjoint from another prepare-data call's --per-class N")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--image-size", a.image_size,
                   "Images: resize to SxS (Pillow's bicubic) unless already that size; 0 keeps the source size, "
                   "which must then be the same for every image")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--max-image-pixels", a.max_pixels,
                   "Images: refuse an image of more pixels (width x height) from its header, before decoding it "
                   "(default: Pillow's decompression-bomb limit)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    add_common_options(app, common);
    // Flags of the other kind of format would be silently ignored: refuse them as bad flags.
    app.final_callback([&] {
        const bool images = is_image_format(a.format);
        for (const char * flag : images ? std::vector<const char *>{ "--domain", "--limit", "--domains", "--strict",
                                                                      "--include-images" }
                                        : std::vector<const char *>{ "--classes", "--keep-classes", "--per-class", "--skip-per-class", "--image-size",
                                                                      "--max-image-pixels" }) {
            if (app.get_option(flag)->count() > 0) {
                throw CLI::ValidationError(flag, std::string("not used by --format ") + a.format +
                                                     (images ? " (image formats take --classes, --per-class)" : ""));
            }
        }
    });
    return run_program(app, common, argc, argv, [&] {
        if (is_image_format(a.format)) {
            set_max_image_pixels(a.max_pixels);
            prepare_images(a, common.seed);
        } else {
            prepare(a, common.seed);
        }
    });
}
