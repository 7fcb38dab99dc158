// benchmark: several model folders (bases, fine-tuned checkpoints, LoRA adapters, gates) on the
// same data, one table: accuracy per domain and overall (macro-F1 for images), the scoring pass's
// speed, peak memory, parameters, routing accuracy for gates. Markdown on stdout; results.csv,
// results.md, results.png and each run's predictions-<run>.csv in --out.
// With --long-inputs: memory and time of random T5 shapes against source length
// (eval/long_input_bench.h), each measurement a process of its own (this program, started with
// --long-input-case).
#include "adapters/parameter_count.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/runtime.h"
#include "dist/world.h"
#include "eval/beit_folder.h"
#include "eval/benchmark_table.h"
#include "eval/classification_metrics.h"
#include "eval/image_predict.h"
#include "eval/long_input_bench.h"
#include "eval/long_input_case.h"
#include "eval/report.h"
#include "eval/routing.h"
#include "eval/t5_folder.h"
#include "io/atomic_file.h"
#include "io/run_record.h"
#include "models/model_family.h"
#include "perf/gemm_peak.h"
#include "perf/peak_memory.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <set>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

struct LongInputFlags {
    bool                     on = false;
    std::vector<std::string> shapes, modes = { "dense", "chunk:256", "chunk:256+topk:64" }, tasks = { "forward", "lora-step" };
    std::vector<int64_t>     lengths = { 1024, 2048, 4096, 8192, 16384, 32768 };
    double                   memory_limit_gb = 18;
    std::vector<std::string> more_results;
};

struct Flags {
    std::vector<std::string> run_args, data;
    std::string              zero_shot, base_dir, out_dir, scoring = "rank";
    TextFlags                text;
    ModelFlags               model;
    LongInputFlags           long_inputs;
};

struct Run {
    std::string name, dir;
    bool        zero_shot = false;
};

// A model folder counts as trained only when finetune wrote it (a base as saved, or a Hugging
// Face folder, trained nothing here).
bool untrained(const Run & run) {
    if (run.zero_shot || folder_kind(run.dir) != FolderKind::model) {
        return run.zero_shot;
    }
    const std::optional<RunRecord> record = read_run_record(run.dir);
    return !record || record->kind != "model";
}

// --base applies to adapters and gates; a model folder runs on its own.
std::string base_override(const Run & run, const Flags & f) {
    return folder_kind(run.dir) == FolderKind::model ? std::string() : f.base_dir;
}

std::vector<Run> runs_of(const Flags & f) {
    std::vector<Run>      runs;
    std::set<std::string> names;
    if (!f.zero_shot.empty()) {
        runs.push_back({ "zero-shot", f.zero_shot, true });
    }
    for (const auto & arg : f.run_args) {
        const ExpertSpec spec = parse_expert_spec(arg, "--run");
        runs.push_back({ spec.name, spec.dir, false });
    }
    for (const auto & r : runs) {
        if (!names.insert(r.name).second) {
            fail("--run", "the name '" + r.name + "' is given twice");
        }
    }
    if (runs.empty()) {
        fail("--run", "nothing to benchmark: give --run NAME=DIR (several) and/or --zero-shot BASE_DIR");
    }
    return runs;
}

// The gate's routing accuracy (own expert on top), when the model routes.
std::optional<double> routing_accuracy(const Adapters & adapters, GateLog * log, const std::vector<Prediction> & predictions) {
    if (log == nullptr) {
        return std::nullopt;
    }
    return summarize_routing(collect_routing(*log, adapters.routed_modules(), adapters.expert_names()), predictions).accuracy();
}

ImageSet first_images(const ImageSet & images, int64_t n) {
    n = std::min(n, images.size());
    return { images.images.slice(0, 0, n), images.labels.slice(0, 0, n),
             { images.domains.begin(), images.domains.begin() + n }, images.class_names };
}

BenchmarkRow text_row(const Run & run, const Flags & f, const CLI::App & app, const std::vector<McqRecord> & records,
                      const CommonOptions & common, const std::string & out) {
    const c10::ScalarType dtype  = parse_float_dtype(f.model.dtype);
    LoadedT5              loaded = load_t5_any(run.dir, base_override(run, f), dtype, parse_device(common.device), f.model.run);
    GateLog *             log    = loaded.adapters.gate_log();
    const TextSetup       setup  = saved_text_flags(run.dir, app, f.text).setup();
    const Scoring         scoring = parse_scoring(f.scoring);
    // One batch first (one per process), untimed: the first calls set up kernels and memory pools.
    const std::vector<McqRecord> first(records.begin(), records.begin() + std::min<ptrdiff_t>(records.size(), f.model.eval_batch_size * dist::size()));
    predict_mcq(loaded.base.model, loaded.base.tokenizer, first, setup, scoring, f.model.eval_batch_size);
    const PredictResult   result = predict_mcq(loaded.base.model, loaded.base.tokenizer, records, setup, scoring,
                                               f.model.eval_batch_size, log);
    if (dist::is_main()) {
        write_predictions_csv(out + "/predictions-" + run.name + ".csv", result.predictions);
    }

    BenchmarkRow         row;
    const nlohmann::json metrics = answer_metrics(result.predictions);
    for (const auto & [domain, s] : metrics["per_domain"].items()) {
        row.domains[domain] = s["accuracy"].get<double>();
    }
    row.accuracy = labeled_accuracy(result.predictions);
    if (scoring == Scoring::teacher_forced) {
        row.rank_accuracy = labeled_accuracy(predict_mcq(loaded.base.model, loaded.base.tokenizer, records, setup,
                                                         Scoring::rank, f.model.eval_batch_size).predictions);
    }
    row.kind                = loaded.adapters.description;
    row.examples_per_second = static_cast<double>(records.size()) / std::max(result.seconds, 1e-9);
    row.routing_accuracy    = routing_accuracy(loaded.adapters, log, result.predictions);
    const ParameterCount n  = count_parameters(loaded.base.model, loaded.adapters, untrained(run));
    row.trainable           = n.trainable;
    row.total               = n.total;
    return row;
}

BenchmarkRow image_row(const Run & run, const Flags & f, const ImageSet & images, const CommonOptions & common,
                       const std::string & out) {
    const c10::ScalarType  dtype  = parse_float_dtype(f.model.dtype);
    LoadedBeit             loaded = load_beit_any(run.dir, base_override(run, f), dtype, parse_device(common.device));
    GateLog *              log    = loaded.adapters.gate_log();
    predict_images(loaded.base, first_images(images, f.model.eval_batch_size * dist::size()), f.model.eval_batch_size);  // untimed warm-up, a batch per process
    const ImagePredictions p      = predict_images(loaded.base, images, f.model.eval_batch_size, log);
    if (dist::is_main()) {
        write_predictions_csv(out + "/predictions-" + run.name + ".csv", p.result.predictions);
    }

    BenchmarkRow  row;
    const int64_t classes = loaded.base.model.config().num_labels();
    for (const auto & [domain, m] : per_domain_metrics(images.domains, p.targets, p.predicted, classes)) {
        row.domains[domain] = m.accuracy;
    }
    const ClassificationMetrics overall = classification_metrics(p.targets, p.predicted, classes);
    row.accuracy                        = overall.accuracy;
    row.macro_f1                        = overall.macro_f1;
    row.kind                            = loaded.adapters.description;
    row.examples_per_second             = static_cast<double>(images.size()) / std::max(p.result.seconds, 1e-9);
    row.routing_accuracy                = routing_accuracy(loaded.adapters, log, p.result.predictions);
    const ParameterCount n              = count_parameters(loaded.base.model, loaded.adapters, untrained(run));
    row.trainable                       = n.trainable;
    row.total                           = n.total;
    return row;
}

void add_long_input_flags(CLI::App & app, LongInputFlags & f) {
    const std::string group = "Long inputs";
    app.add_flag("--long-inputs", f.on, "Instead of --run: peak memory and time of random T5 shapes against source length")->group(group);
    app.add_option("--shapes", f.shapes, "With --long-inputs: T5 config.json files (e.g. configs/t5-tiny.json); none: a report on --more-results alone")
        ->type_name(kPathType)->delimiter(',')->group(group);
    app.add_option("--lengths", f.lengths, "With --long-inputs: source lengths in tokens")->delimiter(',')->capture_default_str()
        ->check(CLI::PositiveNumber)->group(group);
    app.add_option("--modes", f.modes, "With --long-inputs: dense, chunk:C, chunk:C+topk:K")->delimiter(',')->capture_default_str()->group(group);
    app.add_option("--tasks", f.tasks, "With --long-inputs: forward (teacher-forced, with loss), lora-step (r 8 on q,v)")
        ->delimiter(',')->capture_default_str()->check(CLI::IsMember({ "forward", "lora-step" }))->group(group);
    app.add_option("--memory-limit-gb", f.memory_limit_gb, "With --long-inputs: a measurement is stopped when its resident memory passes this")
        ->capture_default_str()->check(CLI::PositiveNumber)->group(group);
    app.add_option("--more-results", f.more_results,
                   "With --long-inputs: long-inputs.csv rows measured before (scripts/long-input-peer for transformers, or another run) to show beside these (several)")
        ->type_name(kPathType)->check(CLI::ExistingFile)->group(group);
}

void run_long_inputs(const Flags & f) {
    if (dist::size() > 1) {
        throw Error("--long-inputs runs as one process (each measurement starts its own)");
    }
    if (!f.run_args.empty() || !f.zero_shot.empty() || !f.data.empty()) {
        fail("--long-inputs", "measures random models: give no --run, --zero-shot or --data with it");
    }
    if (f.long_inputs.shapes.empty() && f.long_inputs.more_results.empty()) {
        fail("--shapes", "--long-inputs needs T5 config.json files to measure (e.g. configs/t5-tiny.json), or --more-results to report on");
    }
    for (const std::string & shape : f.long_inputs.shapes) {
        T5Config::read(shape);  // a bad shape fails here, not in every measurement
    }
    for (const std::string & mode : f.long_inputs.modes) {
        run_options_of_mode(mode);
    }
    std::vector<LongInputRow> more;  // read first: a bad file fails before hours of measuring
    for (const std::string & file : f.long_inputs.more_results) {
        const std::vector<LongInputRow> rows = read_long_input_rows(file);
        more.insert(more.end(), rows.begin(), rows.end());
    }
    StagedDirectory out(f.out_dir);
    const double    peak = f.long_inputs.shapes.empty() ? 0.0 : measure_gemm_peak_gflops(at::kFloat);  // nothing measured: none
    if (peak > 0) {
        spdlog::info("f32 GEMM peak: {:.1f} GFLOP/s", peak);
    }
    LongInputPlan plan{ "/proc/self/exe", f.long_inputs.shapes, f.long_inputs.modes, f.long_inputs.tasks, f.long_inputs.lengths,
                        static_cast<int64_t>(f.long_inputs.memory_limit_gb * 1e9), at::get_num_threads(), peak };
    std::vector<LongInputRow> rows = run_long_input_plan(plan);
    rows.insert(rows.end(), more.begin(), more.end());
    const std::string table = write_long_input_report(out.path(), rows);
    out.commit();
    std::printf("%s\nbenchmark: %zu long-input measurements -> %s\n", table.c_str(), rows.size(), f.out_dir.c_str());
}

// A process started by run_long_input_plan: one measurement, its result as a JSON line on stdout.
int long_input_case_main(int argc, char ** argv) {
    CLI::App      app("One measurement of benchmark --long-inputs", "benchmark");
    CommonOptions common;
    std::string   spec;
    app.add_option("--long-input-case", spec, "The case as JSON")->required();
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        const LongInputTiming t = measure_long_input(LongInputCase::from_json(nlohmann::json::parse(spec)));
        const nlohmann::json  j = { { "seconds", t.seconds }, { "reps", t.reps }, { "peak_rss_bytes", t.peak_rss }, { "flops", t.flops } };
        std::printf("%s\n", j.dump().c_str());
    });
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc > 1 && std::string(argv[1]) == "--long-input-case") {
        return long_input_case_main(argc, argv);
    }
    CLI::App      app("Benchmark several models on the same data: one table of accuracy, speed, memory and size", "benchmark");
    CommonOptions common;
    Flags         f;
    app.add_option("--run", f.run_args, "A model to benchmark, NAME=DIR: base, fine-tuned checkpoint, LoRA adapter or gate folder (several)")
        ->type_name(kNamedPathType);
    app.add_option("--zero-shot", f.zero_shot, "A base to benchmark as saved, in a row named zero-shot")->type_name(kPathType);
    app.add_option("--base", f.base_dir, "Base for every adapter and gate (default: the one each names)")->type_name(kPathType);
    app.add_option("--data", f.data, "Data from prepare-data: jsonl file(s) for T5, DIR/<split>.safetensors for BEiT (required unless --long-inputs)")->type_name(kPathType);
    app.add_option("--out", f.out_dir, "Output folder: results.csv, results.md, results.png, predictions-<run>.csv")->type_name(kPathType)->required();
    app.add_option("--scoring", f.scoring, "T5: rank (default), generate or teacher-forced (then rank accuracy is reported beside it)")
        ->capture_default_str()
        ->check(CLI::IsMember(scoring_names()));
    add_text_flags(app, f.text);
    add_model_flags(app, f.model);
    add_common_options(app, common);
    add_process_options(app, common);
    add_long_input_flags(app, f.long_inputs);
    app.parse_complete_callback([&] {
        if (!f.long_inputs.on && f.data.empty()) {
            throw CLI::RequiredError("--data");
        }
    });
    return run_program(app, common, argc, argv, [&] {
        if (f.long_inputs.on) {
            return run_long_inputs(f);
        }
        const std::vector<Run> runs   = runs_of(f);
        const ModelFamily      family = model_family_of(base_dir_of(runs.front().dir, base_override(runs.front(), f)));
        for (const auto & r : runs) {
            if (model_family_of(base_dir_of(r.dir, base_override(r, f))) != family) {
                fail(r.dir, "runs on another kind of model (T5 or BEiT) than " + runs.front().dir +
                                "; one benchmark compares models of one kind on one data set");
            }
        }
        reject_text_flags_for(family, app);
        require_data_of_family(f.data, family);
        std::vector<McqRecord> records;
        ImageSet               images;
        if (family == ModelFamily::t5) {
            records = read_mcq_files(f.data);
        } else {
            images = read_image_sets(f.data);
        }

        // On several processes every rank scores its share of each run; rank 0 writes.
        std::optional<StagedDirectory> out;
        if (dist::is_main()) {
            out.emplace(f.out_dir);
        }
        const std::string         staging = out ? out->path() : std::string();
        std::vector<BenchmarkRow> rows;
        for (const auto & r : runs) {
            if (!reset_peak_memory()) {
                spdlog::warn("peak memory cannot be reset here: each run's figure is the process's peak so far");
            }
            BenchmarkRow row = family == ModelFamily::t5 ? text_row(r, f, app, records, common, staging)
                                                         : image_row(r, f, images, common, staging);
            row.run               = r.name;
            row.peak_memory_bytes = peak_memory_bytes();
            spdlog::info("{} ({}): accuracy {:.4f}, {:.1f} examples/s", r.name, row.kind, row.accuracy.value_or(0.0),
                         row.examples_per_second);
            rows.push_back(std::move(row));
        }
        if (!out) {
            return;
        }
        const std::string table = benchmark_markdown(rows);
        write_text_atomic((fs::path(staging) / "results.md").string(), table);
        write_benchmark_results(staging, rows);
        out->commit();
        std::printf("%s\nbenchmark: %zu runs -> %s\n", table.c_str(), rows.size(), f.out_dir.c_str());
    });
}
