#include "io/run_record.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace cgm {
namespace {

constexpr const char * kFileName = "run.json";

// What these programs wrote before run.json existed: a folder holding one of these is an earlier
// output, to be replaced only with --overwrite.
const std::set<std::string> & legacy_markers() {
    static const std::set<std::string> names = { "config.json",      "adapter_config.json", "gate_config.json",
                                                 "trainer_state.json", "metrics.json",      "dataset.json" };
    return names;
}

// A file being written, or inside a folder being filled (io/atomic_file.h).
bool is_staging_name(const std::string & relative) {
    for (const auto & part : fs::path(relative)) {
        if (temporary_suffix(part.string()) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// The files the training programs write into their folder (what an interrupted run may have
// written before recording it).
bool training_output_name(const std::string & relative) {
    static const std::set<std::string> model_files = { "adapter_model.safetensors", "model.safetensors",
                                                       "gate.safetensors",          "metrics.csv",
                                                       "curves.png",                "spiece.model",
                                                       "added_tokens.json",         "special_tokens_map.json",
                                                       "tokenizer_config.json",     "preprocessor_config.json" };
    return legacy_markers().count(relative) || model_files.count(relative) || relative.rfind("checkpoint/", 0) == 0;
}

// Every regular file under dir, relative, but run.json and leftovers of interrupted writes.
std::vector<std::string> files_under(const std::string & dir) {
    std::vector<std::string> files;
    std::error_code          ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
        if (it->is_regular_file(ec) && rel != kFileName && !is_staging_name(rel)) {
            files.push_back(rel);
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Whether `inner` is `outer` or lies inside it.
bool within(const fs::path & inner, const fs::path & outer) {
    const auto [end, _] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
    return end == outer.end();
}

bool is_training_kind(const std::string & kind) {
    return kind == "model" || kind == "lora" || kind == "gate";
}

std::string value_text(const nlohmann::json & v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}

RunRecord & process_run() {
    static RunRecord record;
    return record;
}

bool & process_run_set() {
    static bool set = false;
    return set;
}

// "a" or "an" before a kind's name.
std::string article(const std::string & word) {
    return !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos ? "an" : "a";
}

}  // namespace

nlohmann::json to_json(const RunRecord & r) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto & d : r.data) {
        data.push_back({ { "path", d.path }, { "sha256", d.sha256 } });
    }
    return { { "program", r.program }, { "version", r.version },   { "kind", r.kind },
             { "settings", r.settings }, { "data", data },         { "inputs", r.inputs },
             { "started", r.started },   { "finished", r.finished }, { "files", r.files } };
}

std::optional<RunRecord> read_run_record(const std::string & dir) {
    const std::string path = (fs::path(dir) / kFileName).string();
    std::error_code   ec;
    if (!fs::exists(path, ec)) {
        return std::nullopt;
    }
    const nlohmann::json j = read_json_file(path);
    RunRecord            r;
    try {
        r.program  = j.at("program").get<std::string>();
        r.version  = j.at("version").get<std::string>();
        r.kind     = j.at("kind").get<std::string>();
        r.settings = j.at("settings");
        for (const auto & d : j.at("data")) {
            r.data.push_back({ d.at("path").get<std::string>(), d.at("sha256").get<std::string>() });
        }
        r.inputs   = j.at("inputs").get<std::vector<std::string>>();
        r.started  = j.at("started").get<std::string>();
        r.finished = j.at("finished").get<std::string>();
        r.files    = j.at("files").get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception & e) {
        fail(path, "not a run record: " + json_error_text(e));
    }
    if (!r.settings.is_object()) {
        fail(path, "not a run record: 'settings' is not an object");
    }
    return r;
}

void write_run_record(const std::string & dir, RunRecord record) {
    record.files = files_under(dir);
    write_json_file((fs::path(dir) / kFileName).string(), to_json(record));
}

const RunRecord * current_run() {
    return process_run_set() ? &process_run() : nullptr;
}

const RunRecord & library_run() {
    static const RunRecord run = [] {
        RunRecord r;
        r.overwrite = true;
        return r;
    }();
    return run;
}

void set_current_run(RunRecord record) {
    process_run()     = std::move(record);
    process_run_set() = true;
}

std::vector<std::string> differing_settings(const nlohmann::json & saved, const nlohmann::json & now,
                                            const std::vector<std::string> & also_ignored) {
    std::set<std::string> ignored = { "threads", "device", "log-level", "resume", "overwrite", "config" };
    ignored.insert(also_ignored.begin(), also_ignored.end());
    std::set<std::string> keys;
    for (const auto & [k, _] : saved.items()) {
        keys.insert(k);
    }
    for (const auto & [k, _] : now.items()) {
        keys.insert(k);
    }
    std::vector<std::string> out;
    for (const auto & k : keys) {
        const nlohmann::json a = saved.value(k, nlohmann::json()), b = now.value(k, nlohmann::json());
        if (!ignored.count(k) && a != b) {
            out.push_back("--" + k + " " + (a.is_null() ? "unset" : value_text(a)) + " there, " +
                          (b.is_null() ? "unset" : value_text(b)) + " now");
        }
    }
    return out;
}

void claim_output_folder(const std::string & dir, const RunRecord & run, bool resuming) {
    std::error_code ec;
    const fs::path  target = fs::weakly_canonical(fs::absolute(dir), ec);
    for (const auto & input : run.inputs) {
        if (within(fs::weakly_canonical(fs::absolute(input), ec), target)) {
            fail(dir, "is also an input of this run (" + input + "); write the output elsewhere");
        }
    }
    if (!fs::exists(target, ec)) {
        return;
    }
    if (!fs::is_directory(target, ec)) {
        fail(dir, "exists and is not a directory");
    }
    // Empty folders and temporary files of killed writes (a run killed before its first file was
    // in place) hold no output.
    if (fs::is_empty(target, ec) || (files_under(dir).empty() && !fs::exists(target / kFileName, ec))) {
        return;
    }
    std::optional<RunRecord> there;
    try {
        there = read_run_record(dir);
    } catch (const Error & e) {
        if (!run.overwrite) {
            throw Error(std::string(e.what()) + "; pass --overwrite to replace the folder's output, or choose another --out");
        }
        return;  // replaced as an output without a record
    }
    if (!there) {
        const std::vector<std::string> files = files_under(dir);
        const bool earlier = std::any_of(files.begin(), files.end(), [](const std::string & f) { return legacy_markers().count(f); });
        if (!earlier) {
            fail(dir, "exists and does not hold an output of these programs; refusing to replace it");
        }
        if (!run.overwrite) {
            fail(dir, "holds an earlier output without run.json; pass --overwrite to replace it, or choose another --out");
        }
        return;
    }
    // A training run killed between writing a file and recording it leaves the file unlisted: the
    // folder of an unfinished run of the same program may hold such files, under the names runs write.
    const bool                  interrupted = there->finished.empty() && there->program == run.program;
    const std::set<std::string> written(there->files.begin(), there->files.end());
    for (const auto & file : files_under(dir)) {
        if (!written.count(file) && !(interrupted && training_output_name(file))) {
            fail((fs::path(dir) / file).string(),
                 "was not written by " + there->program + " (not in run.json); move it away before writing into " + dir);
        }
    }
    if (there->kind != run.kind || there->program != run.program) {
        if (!run.overwrite) {
            fail(dir, "holds " + article(there->kind) + " " + there->kind + " written by " + there->program + "; refusing to replace it with " +
                          article(run.kind) + " " + run.kind + " (pass --overwrite, or choose another --out)");
        }
        return;
    }
    const std::vector<std::string> diff = differing_settings(there->settings, run.settings, { "out" });
    if (!resuming && !diff.empty() && !run.overwrite) {
        fail(dir, "holds another " + there->program + " run (" + diff.front() +
                      (diff.size() > 1 ? ", and " + std::to_string(diff.size() - 1) + " more" : "") + "); pass " +
                      (is_training_kind(run.kind) ? "--resume to continue it, " : "") +
                      "--overwrite to replace it, or choose another --out");
    }
}

void remove_earlier_output(const std::string & dir) {
    std::error_code          ec;
    std::optional<RunRecord> there;
    try {
        there = read_run_record(dir);
    } catch (const Error &) {  // a malformed run.json (replaced with --overwrite): the names these programs write
    }
    // What the record lists; without one, or for a run that did not finish (it may not have
    // recorded its last files), the names these programs write.
    std::set<std::string> files;
    if (there) {
        files.insert(there->files.begin(), there->files.end());
    }
    if (!there || there->finished.empty()) {
        for (const auto & file : files_under(dir)) {
            if (training_output_name(file)) {
                files.insert(file);
            }
        }
    }
    for (const auto & file : files) {
        fs::remove(fs::path(dir) / file, ec);
    }
    fs::remove(fs::path(dir) / kFileName, ec);
    spdlog::info("{}: removed {} files of the earlier output", dir, files.size());
}

int64_t remove_interrupted_writes(const std::string & dir) {
    std::vector<fs::path> leftovers;
    std::error_code       ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        const size_t      at   = temporary_suffix(name);
        if (at == std::string::npos || !it->is_regular_file(ec)) {
            continue;
        }
        const long pid = std::strtol(name.c_str() + at + 5, nullptr, 10);
        if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            leftovers.push_back(it->path());
        }
    }
    for (const auto & path : leftovers) {
        fs::remove(path, ec);
    }
    return static_cast<int64_t>(leftovers.size());
}

std::string utc_now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm           utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

}  // namespace cgm
