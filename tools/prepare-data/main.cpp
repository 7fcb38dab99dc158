// prepare-data: raw multiple-choice datasets in, normalized splits out
// (DIR/{train,val,test}.jsonl + DIR/dataset.json).
#include "cli/program.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "text/dataset_readers.h"
#include "text/splits.h"
#include "text/wordnet.h"

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
    std::string              split = "train=0.8,val=0.1,test=0.1";
    int64_t                  limit = 0;
    bool                     strict = false;
    bool                     include_images = false;
    std::string              domains;  // keep only these (comma-separated); empty: all
};

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

void prepare(const Args & a, uint64_t seed) {
    const SplitRatios       ratios  = parse_split_ratios(a.split);
    std::vector<ReadResult> results = read_inputs(a, seed);

    // Sources that name their splits (train/dev/test files, ScienceQA's split field) keep them.
    bool keep = a.format != "wordnet";
    for (const auto & r : results) {
        keep = keep && !r.split.empty();
    }
    Splits                 splits;
    std::vector<BadRecord> bad;
    int64_t                skipped_images = 0;
    std::vector<McqRecord> pooled;
    for (auto & r : results) {
        bad.insert(bad.end(), r.bad.begin(), r.bad.end());
        skipped_images += r.skipped_images;
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
        fail(a.inputs.empty() ? a.format : a.inputs.front(), "no usable records");
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
                keep ? "splits kept from the sources" : ("random split " + a.split).c_str(), per_domain.size(),
                per_domain.size() == 1 ? "" : "s", bad.size(),
                skipped_images ? (", " + std::to_string(skipped_images) + " image questions skipped").c_str() : "",
                a.out.c_str());
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Turn raw multiple-choice datasets into normalized train/val/test jsonl splits", "prepare-data");
    CommonOptions common;
    Args          a;
    app.add_option("--format", a.format, "Input format")
        ->required()
        ->check(CLI::IsMember({ "commonsenseqa", "medqa", "scienceqa", "unifiedqa", "mcq-jsonl", "wordnet" }));
    app.add_option("--input", a.inputs,
                   "Input file(s); split names in file names (train/dev/test) are kept. wordnet: the WordNet folder "
                   "(default /usr/share/wordnet)");
    app.add_option("--out", a.out, "Output folder")->required();
    app.add_option("--domain", a.domain, "Domain name for every record (default: the format's name)");
    app.add_option("--split", a.split, "Ratios when the sources have no splits")->capture_default_str();
    app.add_option("--limit", a.limit, "At most N records per input file (wordnet: per domain, default 1000)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--domains", a.domains, "Keep only these domains (comma-separated; splits are made before filtering)");
    app.add_flag("--strict", a.strict, "Stop at the first bad record instead of skipping it");
    app.add_flag("--include-images", a.include_images, "ScienceQA: keep questions that come with an image");
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] { prepare(a, common.seed); });
}
