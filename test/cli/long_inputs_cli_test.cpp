// benchmark --long-inputs: each measurement in its own process, rows for every shape x task x mode
// x length, a measurement past the memory limit stopped and the longer ones of its series skipped,
// the peer's rows read in beside ours, and bad input refused in one line with nothing written.
#include "io/csv.h"
#include "support/cli_workspace.h"
#include "support/run_program.h"
#include "support/temp_dir.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(CGM_CONFIGS_DIR) + "/t5-tiny.json";

// long-inputs.csv as one map of column -> text per row.
std::vector<std::map<std::string, std::string>> read_rows(const std::string & dir) {
    const std::vector<CsvRow> table = read_csv(dir + "/long-inputs.csv");
    std::vector<std::map<std::string, std::string>> rows;
    for (size_t i = 1; i < table.size(); ++i) {
        std::map<std::string, std::string> row;
        for (size_t c = 0; c < table[0].size(); ++c) {
            row[table[0][c]] = table[i].at(c);
        }
        rows.push_back(row);
    }
    return rows;
}

}  // namespace

TEST_CASE("benchmark --long-inputs measures every series, stops what passes the limit, shows the peer's rows",
          "[cli][benchmark][long-inputs]") {
    TempDir           tmp;
    const std::string peer = tmp.file("peer.csv");
    write_bytes(peer, "implementation,shape,mode,task,source_tokens,status,seconds,peak_rss_bytes,reps\n"
                      "transformers,t5-tiny,dense,forward,64,ok,0.01,300000000,3\n"
                      "transformers,t5-tiny,dense,forward,128,over-limit,,900000000,0\n");
    const std::string   out = tmp.file("long");
    const ProgramResult r   = run_program("benchmark", "--long-inputs --shapes " + kTiny + " --lengths 128,64 --modes dense,chunk:16+topk:8"
                                                     " --tasks forward,lora-step --more-results " + peer + " --out " + out +
                                                     " --log-level warn");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("### t5-tiny, forward"));
    CHECK_THAT(r.out, Contains("transformers dense"));
    const auto rows = read_rows(out);
    REQUIRE(rows.size() == 2 * 2 * 2 + 2);  // tasks x modes x lengths, then the peer's
    for (size_t i = 0; i < 8; ++i) {
        INFO("row " << i);
        CHECK(rows[i].at("implementation") == "cgm");
        CHECK(rows[i].at("status") == "ok");
        CHECK(std::stod(rows[i].at("peak_rss_bytes")) > 1e6);
        CHECK(std::stod(rows[i].at("seconds")) > 0);
        CHECK(std::stod(rows[i].at("model_gflops")) > 0);
        CHECK(std::stod(rows[i].at("f32_peak_fraction")) > 0);
    }
    CHECK(rows[0].at("source_tokens") == "64");  // lengths in increasing order
    CHECK(rows[1].at("source_tokens") == "128");
    CHECK(rows[2].at("mode") == "q-chunk 16, top-k 8");
    CHECK(rows[8].at("implementation") == "transformers");
    CHECK(fs::exists(out + "/long-inputs.md"));

    // A report on earlier rows alone: the same rows, nothing measured.
    const std::string report = tmp.file("report");
    const ProgramResult again = run_program("benchmark", "--long-inputs --more-results " + out + "/long-inputs.csv --out " + report +
                                                             " --log-level warn");
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    const auto reported = read_rows(report);
    REQUIRE(reported.size() == rows.size());
    CHECK(reported[3].at("f32_peak_fraction") == rows[3].at("f32_peak_fraction"));
    CHECK(reported[3].at("peak_rss_bytes") == rows[3].at("peak_rss_bytes"));

    // A limit below any process's memory: the first length is stopped, the next skipped.
    const std::string   tight = tmp.file("tight");
    const ProgramResult t     = run_program("benchmark", "--long-inputs --shapes " + kTiny + " --lengths 64,128 --tasks forward"
                                                         " --modes dense --memory-limit-gb 0.01 --out " + tight + " --log-level warn");
    INFO(t.err);
    REQUIRE(t.exit_code == 0);
    const auto stopped = read_rows(tight);
    REQUIRE(stopped.size() == 2);
    CHECK(stopped[0].at("status") == "over-limit");
    CHECK(stopped[1].at("status") == "skipped");
}

TEST_CASE("benchmark --long-inputs refuses bad modes, shapes and peer files in one line, writing nothing",
          "[cli][benchmark][long-inputs]") {
    TempDir           tmp;
    const std::string bad_peer = tmp.file("bad.csv"), missing_column = tmp.file("missing.csv");
    write_bytes(bad_peer, "implementation,shape,mode,task,source_tokens,status,seconds,peak_rss_bytes,reps\n"
                          "transformers,t5-tiny,dense,forward,64,ok,fast,300000000,3\n");
    write_bytes(missing_column, "implementation,shape\ntransformers,t5-tiny\n");
    const std::string out = tmp.file("out");
    const std::vector<std::pair<std::string, std::string>> cases = {
        { "--shapes " + kTiny + " --modes chunk:0", "--modes" },
        { "--shapes " + kTiny + " --modes sparse", "sparse" },
        { "--modes dense", "--shapes" },
        { "--shapes " + tmp.file("none.json") + " --lengths 64 --tasks forward --modes dense", "none.json" },
        { "--shapes " + kTiny + " --more-results " + bad_peer, "bad.csv:2" },
        { "--shapes " + kTiny + " --more-results " + missing_column, "missing.csv" },
        { "--shapes " + kTiny + " --data x.jsonl", "--long-inputs" },
    };
    for (const auto & [args, named] : cases) {
        const ProgramResult r = run_program("benchmark", "--long-inputs " + args + " --out " + out);
        INFO(args << "\n" << r.err);
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.err, Contains(named));
        CHECK(!fs::exists(out));
    }
    const ProgramResult no_data = run_program("benchmark", "--run a=x --out " + out);
    CHECK(no_data.exit_code == 2);
    CHECK_THAT(no_data.err, Contains("--data"));
}

TEST_CASE("training and evaluation take --q-chunk and --attn-topk and record both in run.json", "[cli][long-inputs]") {
    const std::unique_ptr<Workspace> w = make_workspace("long-input flags");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "chunked", " --q-chunk 4 --attn-topk 3");
    CHECK(read_json(lora + "/run.json")["settings"]["q-chunk"] == "4");
    CHECK(read_json(lora + "/run.json")["settings"]["attn-topk"] == "3");
    const std::string eval = w->file("eval");
    run_ok("evaluate", "--model " + lora + " --data " + w->data + "/test.jsonl --out " + eval +
                           " --scoring teacher-forced --q-chunk 5 --attn-topk 2 --log-level warn");
    CHECK(read_json(eval + "/run.json")["settings"]["attn-topk"] == "2");
    CHECK(read_json(eval + "/run.json")["settings"]["q-chunk"] == "5");
}
