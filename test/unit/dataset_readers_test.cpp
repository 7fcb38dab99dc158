// Raw dataset readers: good records, every bad one reported as file:line: reason, strict mode.
#include "core/error.h"
#include "support/temp_dir.h"
#include "text/dataset_readers.h"
#include "text/splits.h"

#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;

TEST_CASE("CommonsenseQA: choices by label, answerKey optional, bad lines reported", "[unit][data]") {
    TempDir dir;
    const std::string p = dir.file("train_rand_split.jsonl");
    write_bytes(p,
                R"({"answerKey":"B","id":"q1","question":{"stem":"Where?","choices":[{"label":"A","text":"here"},{"label":"B","text":"there"}]}})" "\n"
                R"({"id":"q2","question":{"stem":"Who?","choices":[{"label":"A","text":"me"},{"label":"B","text":"you"}]}})" "\n"
                "{not json\n"
                R"({"answerKey":"Z","id":"q4","question":{"stem":"Why?","choices":[{"label":"A","text":"x"},{"label":"B","text":"y"}]}})" "\n"
                R"({"answerKey":"A","id":"q5","question":{"choices":[]}})" "\n");
    const ReadResult r = read_commonsenseqa(p, {});
    REQUIRE(r.split == "train");
    REQUIRE(r.records.size() == 2);
    REQUIRE(r.records[0].label == 1);
    REQUIRE(r.records[0].answer() == "there");
    REQUIRE(r.records[0].domain == "commonsenseqa");
    REQUIRE(r.records[1].label == -1);  // unlabeled test-style record
    REQUIRE(r.bad.size() == 3);
    REQUIRE(r.bad[0].to_string() == p + ":3: malformed JSON");
    REQUIRE_THAT(r.bad[1].to_string(), Contains(p + ":4: answer 'Z' is not one of the choice labels"));
    REQUIRE_THAT(r.bad[2].to_string(), Contains(p + ":5: missing or mistyped field"));
    REQUIRE_THROWS_WITH(read_commonsenseqa(p, { "", true, false }), Contains(p + ":3: malformed JSON"));
}

TEST_CASE("MedQA: options in letter order, answer_idx", "[unit][data]") {
    TempDir dir;
    const std::string p = dir.file("dev.jsonl");
    write_bytes(p, R"({"question":"Dose?","answer":"2","options":{"B":"2","A":"1","C":"3"},"answer_idx":"B"})" "\n"
                   R"({"question":"Dose?","options":{"A":"1","B":"2"},"answer_idx":"E"})" "\n");
    const ReadResult r = read_medqa(p, { "medical", false, false });
    REQUIRE(r.split == "val");
    REQUIRE(r.records.size() == 1);
    REQUIRE(r.records[0].choices == std::vector<std::string>{ "1", "2", "3" });
    REQUIRE(r.records[0].label == 1);
    REQUIRE(r.records[0].domain == "medical");
    REQUIRE(r.bad.size() == 1);
    REQUIRE_THAT(r.bad[0].to_string(), Contains(":2: answer 'E'"));
}

TEST_CASE("ScienceQA: splits from the problems, image questions skipped and counted", "[unit][data]") {
    TempDir dir;
    const std::string p = dir.file("problems.json");
    write_bytes(p, R"({"1":{"question":"Q1","choices":["a","b"],"answer":0,"image":null,"split":"train"},
                       "2":{"question":"Q2","choices":["a","b"],"answer":1,"image":"image.png","split":"train"},
                       "3":{"question":"Q3","choices":["a","b","c"],"answer":7,"image":null,"split":"val"},
                       "4":{"question":"Q4","choices":["a","b"],"answer":1,"image":null,"split":"test"}})");
    const auto results = read_scienceqa(p, {});
    REQUIRE(results.size() == 3);
    int64_t records = 0, images = 0, bad = 0;
    for (const auto & r : results) {
        records += static_cast<int64_t>(r.records.size());
        images += r.skipped_images;
        bad += static_cast<int64_t>(r.bad.size());
        REQUIRE((r.split == "train" || r.split == "val" || r.split == "test"));
    }
    REQUIRE(records == 2);
    REQUIRE(images == 1);
    REQUIRE(bad == 1);  // answer 7 out of range for 3 choices
}

TEST_CASE("UnifiedQA tsv: question, lettered choices, answer text", "[unit][data]") {
    TempDir dir;
    const std::string p = dir.file("test.tsv");
    write_bytes(p, "which is best conductor? \\n (a) iron (b) feather\tiron\n"
                   "no choices here\tx\n"
                   "what? \\n (a) one (b) two (c) three\tfour\n"
                   "too\tmany\tcolumns\n");
    const ReadResult r = read_unifiedqa(p, {});
    REQUIRE(r.records.size() == 1);
    REQUIRE(r.records[0].question == "which is best conductor?");
    REQUIRE(r.records[0].choices == std::vector<std::string>{ "iron", "feather" });
    REQUIRE(r.records[0].label == 0);
    REQUIRE(r.bad.size() == 3);
    REQUIRE_THAT(r.bad[1].to_string(), Contains(p + ":3: answer 'four' is not one of the choices"));
}

TEST_CASE("mcq-jsonl: the seed's string labels, label range, empty files", "[unit][data]") {
    TempDir dir;
    const std::string p = dir.file("mine.jsonl");
    write_bytes(p, R"({"question":"Q","choices":["a","b"],"label":"1"})" "\n"
                   R"({"question":"Q","choices":["a","b"],"label":2})" "\n"
                   R"({"question":"Q","choices":["a"],"label":0})" "\n"
                   R"({"question":"Q","choices":["a","b"],"label":"x"})" "\n");
    const ReadResult r = read_mcq_records(p, { "mine", false, false });
    REQUIRE(r.records.size() == 1);
    REQUIRE(r.records[0].label == 1);
    REQUIRE(r.bad.size() == 3);
    REQUIRE_THAT(r.bad[0].to_string(), Contains(":2: label 2 out of range for 2 choices"));
    REQUIRE_THAT(r.bad[1].to_string(), Contains(":3: needs at least 2 choices"));
    REQUIRE_THAT(r.bad[2].to_string(), Contains(":4: label 'x' is not an index"));
    write_bytes(dir.file("empty.jsonl"), "");
    REQUIRE_THROWS_WITH(read_mcq_records(dir.file("empty.jsonl"), {}), Contains("empty.jsonl: no records"));
    REQUIRE_THROWS_WITH(read_mcq_records(dir.file("missing.jsonl"), {}), Contains("cannot open"));
}

TEST_CASE("normalized jsonl round trip; bad lines are errors with file:line", "[unit][data]") {
    TempDir                dir;
    std::vector<McqRecord> records = { { "a", "d1", "Q \"quoted\"\nline", { "x", "y" }, 1 }, { "b", "d2", "Q2", { "x", "y", "z" }, -1 } };
    write_mcq_jsonl(dir.file("s.jsonl"), records);
    const auto back = read_mcq_jsonl(dir.file("s.jsonl"));
    REQUIRE(back.size() == 2);
    REQUIRE(back[0].question == records[0].question);
    REQUIRE(back[1].label == -1);
    write_bytes(dir.file("bad.jsonl"), mcq_to_json_line(records[0]) + "\n{\"id\":1}\n");
    REQUIRE_THROWS_WITH(read_mcq_jsonl(dir.file("bad.jsonl")), Contains("bad.jsonl:2: not an MCQ record"));
}

TEST_CASE("splits: seeded, stratified by domain, ratios checked", "[unit][data]") {
    std::vector<McqRecord> records;
    for (int i = 0; i < 100; ++i) {
        records.push_back({ std::to_string(i), i % 2 ? "odd" : "even", "q", { "a", "b" }, 0 });
    }
    const Splits a = split_records(records, parse_split_ratios("train=0.8,val=0.1,test=0.1"), 3);
    const Splits b = split_records(records, parse_split_ratios("train=0.8,val=0.1,test=0.1"), 3);
    REQUIRE(a.train.size() == 80);
    REQUIRE(a.val.size() == 10);
    REQUIRE(a.test.size() == 10);
    REQUIRE(std::count_if(a.val.begin(), a.val.end(), [](const McqRecord & r) { return r.domain == "odd"; }) == 5);
    for (size_t i = 0; i < a.train.size(); ++i) {
        REQUIRE(a.train[i].id == b.train[i].id);
    }
    REQUIRE_THROWS_WITH(parse_split_ratios("train=0.8,val=0.1"), Contains("sum to"));
    REQUIRE_THROWS_WITH(parse_split_ratios("train=x"), Contains("bad entry"));
    // A value with trailing text is not read as its leading number.
    REQUIRE_THROWS_WITH(parse_split_ratios("train=0.8x,val=0.1,test=0.1"), Contains("bad entry 'train=0.8x'"));
    REQUIRE_THROWS_WITH(parse_split_ratios("train=,val=0.9,test=0.1"), Contains("bad entry 'train='"));
}
