#include "io/hf_checkpoint.h"

#include "core/error.h"
#include "core/item_list.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

std::string shape_str(const std::vector<int64_t> & s) {
    std::ostringstream o;
    o << "[";
    for (size_t i = 0; i < s.size(); ++i) {
        o << (i ? ", " : "") << s[i];
    }
    o << "]";
    return o.str();
}

// Shard file names from model.safetensors.index.json, each tensor mapped to its file.
std::map<std::string, std::string> read_shard_index(const std::string & index_path) {
    const nlohmann::json index = read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
        fail(index_path, "no 'weight_map' object");
    }
    std::map<std::string, std::string> map;
    for (const auto & [name, file] : index["weight_map"].items()) {
        if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
            fail(index_path, "weight_map entry '" + name + "' must be a file name in the same folder");
        }
        map[name] = file.get<std::string>();
    }
    return map;
}

}  // namespace

HfWeights::HfWeights(const std::string & model_dir) : dir_(model_dir) {
    const fs::path dir(model_dir);
    if (!fs::is_directory(dir)) {
        fail(model_dir, "not a directory");
    }
    const fs::path single = dir / "model.safetensors";
    const fs::path index  = dir / "model.safetensors.index.json";
    if (fs::exists(single)) {
        files_.push_back(std::make_shared<SafetensorsReader>(single.string()));
        for (const auto & name : files_.back()->names()) {
            owner_[name] = files_.back();
        }
        return;
    }
    if (!fs::exists(index)) {
        fail(model_dir, "no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are read)");
    }
    const auto                                                 weight_map = read_shard_index(index.string());
    std::map<std::string, std::shared_ptr<SafetensorsReader>> by_file;
    for (const auto & [name, file] : weight_map) {
        auto & reader = by_file[file];
        if (!reader) {
            reader = std::make_shared<SafetensorsReader>((dir / file).string());
            files_.push_back(reader);
        }
        if (!reader->contains(name)) {
            fail(index.string(), "maps '" + name + "' to " + file + ", which has no such tensor");
        }
        owner_[name] = reader;
    }
    for (const auto & f : files_) {
        for (const auto & name : f->names()) {
            if (!weight_map.count(name)) {
                fail(f->path(), "tensor '" + name + "' is not listed in " + index.string());
            }
        }
    }
}

std::vector<std::string> HfWeights::names() const {
    std::vector<std::string> out;
    for (const auto & kv : owner_) {
        out.push_back(kv.first);
    }
    return out;
}

bool HfWeights::contains(const std::string & name) const {
    return owner_.count(name) != 0;
}

std::vector<int64_t> HfWeights::shape(const std::string & name) const {
    auto it = owner_.find(name);
    if (it == owner_.end()) {
        fail(dir_, "checkpoint has no tensor '" + name + "'");
    }
    return it->second->entry(name).shape;
}

at::Tensor HfWeights::tensor(const std::string & name) const {
    auto it = owner_.find(name);
    if (it == owner_.end()) {
        fail(dir_, "checkpoint has no tensor '" + name + "'");
    }
    return it->second->tensor(name);
}

void HfWeights::check(const ShapeMap & expected, const std::set<std::string> & ignorable) const {
    std::vector<std::string> missing, unexpected, mismatched;
    for (const auto & [name, want] : expected) {
        if (!contains(name)) {
            missing.push_back(name);
        } else if (shape(name) != want) {
            mismatched.push_back(name + " " + shape_str(shape(name)) + " (config.json implies " + shape_str(want) + ")");
        }
    }
    for (const auto & kv : owner_) {
        if (!expected.count(kv.first) && !ignorable.count(kv.first)) {
            unexpected.push_back(kv.first);
        }
    }
    if (missing.empty() && unexpected.empty() && mismatched.empty()) {
        return;
    }
    std::ostringstream msg;
    msg << "checkpoint does not match config.json:";
    const auto list = [&](const char * what, const std::vector<std::string> & items) {
        if (items.empty()) {
            return;
        }
        msg << " " << summarize_items(items, what) << ";";
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("with wrong shape", mismatched);
    std::string text = msg.str();
    text.pop_back();
    fail(dir_, text);
}

void write_hf_model_dir(const std::string & dir, const nlohmann::json & config, const NamedTensors & tensors,
                        const std::vector<std::string> & extra_files) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        fail(dir, "cannot create directory: " + ec.message());
    }
    write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
    for (const auto & src : extra_files) {
        const fs::path dst = fs::path(dir) / fs::path(src).filename();
        if (fs::exists(dst) && fs::equivalent(src, dst)) {
            continue;
        }
        write_file_atomic(dst.string(), [&](std::ostream & out) {
            std::ifstream in(src, std::ios::binary);
            if (!in) {
                fail(src, "cannot open for copying");
            }
            out << in.rdbuf();
        });
    }
    write_json_file((fs::path(dir) / "config.json").string(), config);  // last: marks the folder complete
}

std::vector<std::string> hf_side_files(const std::string & model_dir) {
    std::vector<std::string> out;
    for (const char * name : { "spiece.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                               "tokenizer.json", "generation_config.json", "preprocessor_config.json" }) {
        if (fs::exists(fs::path(model_dir) / name)) {
            out.push_back((fs::path(model_dir) / name).string());
        }
    }
    return out;
}

}  // namespace cgm
