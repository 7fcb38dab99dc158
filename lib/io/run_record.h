#pragma once
// run.json: what an output folder is. Every program writes one into the folder it writes (the
// program, the kind of output, every setting, the data with their hashes, the files it wrote), and
// checks the one already there before writing, so that no run silently replaces another's work.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct DataFile {
    std::string path;
    std::string sha256;
};

struct RunRecord {
    std::string              program;   // "lora-finetune"
    std::string              version;   // the project's version
    std::string              kind;      // dataset, base, model, lora, gate, evaluation
    nlohmann::json           settings;  // flag name (no dashes) -> value as given, or its default
    std::vector<DataFile>    data;      // --train, --val, --data files
    std::vector<std::string> inputs;    // folders and files the run reads: never an output
    std::string              started, finished;  // UTC, ISO 8601; finished empty while running
    std::vector<std::string> files;     // what the program wrote into the folder (relative paths)
    bool                     overwrite = false;  // --overwrite: may replace another run's output
};

nlohmann::json to_json(const RunRecord & record);
// A missing or malformed run.json under `dir`: nullopt / an Error naming the file.
std::optional<RunRecord> read_run_record(const std::string & dir);
// run.json under `dir` (atomically), listing every file now under `dir` as written by this run.
void write_run_record(const std::string & dir, RunRecord record);

// The record of the program running in this process (set once its flags are parsed); null in
// library use, where output folders are not checked.
const RunRecord * current_run();
void              set_current_run(RunRecord record);
// Who writes when no program has set its record: any earlier output of these programs may be
// replaced, nothing else.
const RunRecord & library_run();

// Checks that this run may write into `dir` (see README, "Output folders"): an Error when `dir`
// holds another kind of output, another run's settings (unless --overwrite), files no program
// here wrote, or one of this run's inputs; a malformed run.json only with --overwrite. With
// `resuming`, the settings are not compared (the trainer compares them on --resume; programs check
// the rest before any work).
void claim_output_folder(const std::string & dir, const RunRecord & run, bool resuming = false);

// Removes what an earlier run wrote into `dir` (the files its run.json lists; without one, the
// names these programs write), and nothing else.
void remove_earlier_output(const std::string & dir);

// Removes what writes killed half-way left under dir: temporary files (<name>.tmp-<pid>-...) of
// processes no longer alive. Returns how many.
int64_t remove_interrupted_writes(const std::string & dir);

// The settings that differ between two records (flag names with both values), ignoring those that
// do not change what is written (threads, device, logging, --resume, --overwrite, --config).
std::vector<std::string> differing_settings(const nlohmann::json & saved, const nlohmann::json & now,
                                            const std::vector<std::string> & also_ignored = {});

std::string utc_now();

}  // namespace cgm
