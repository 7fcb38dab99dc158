#pragma once
// Readers for raw multiple-choice datasets. Each returns good records and the bad ones with
// "file:line: reason"; in strict mode the first bad record is an Error instead.
#include "text/mcq.h"

#include <string>
#include <vector>

namespace cgm {

struct ReadOptions {
    std::string domain;                 // domain of every record (default: the format's name)
    bool        strict         = false;
    bool        include_images = false;  // ScienceQA: keep questions that come with an image
};

struct ReadResult {
    std::vector<McqRecord> records;
    std::vector<BadRecord> bad;
    int64_t                skipped_images = 0;
    std::string            split;  // "train", "val" or "test" when the source says so, else ""
};

// Official CommonsenseQA jsonl: question.stem, question.choices[].label/text, answerKey (optional).
ReadResult read_commonsenseqa(const std::string & path, const ReadOptions & options);
// MedQA jsonl: question, options {A: .., B: ..}, answer_idx.
ReadResult read_medqa(const std::string & path, const ReadOptions & options);
// ScienceQA problems.json ({pid: {question, choices, answer, image, split, ...}}); one result
// per split named in the problems (or in pid_splits.json beside it).
std::vector<ReadResult> read_scienceqa(const std::string & path, const ReadOptions & options);
// UnifiedQA tsv: "question \n (a) c1 (b) c2<TAB>answer".
ReadResult read_unifiedqa(const std::string & path, const ReadOptions & options);
// The project's own jsonl (records may lack id/domain; they are filled in).
ReadResult read_mcq_records(const std::string & path, const ReadOptions & options);

// "train" / "val" / "test" from a file name (train.jsonl, dev_rand_split.jsonl, test.tsv), or "".
std::string split_from_file_name(const std::string & path);

}  // namespace cgm
