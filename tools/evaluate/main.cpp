// evaluate: run a T5 model (base, fine-tuned, LoRA adapter on its base, or a trained gate over
// LoRA experts) on multiple-choice records; writes predictions.csv and metrics.json, and for a
// gate its routing (gate_weights.safetensors, routing.csv, routing.png).
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/numbers.h"
#include "core/runtime.h"
#include "eval/report.h"
#include "eval/routing.h"
#include "eval/t5_folder.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

int main(int argc, char ** argv) {
    CLI::App                 app("Evaluate a T5 model or LoRA adapter on multiple-choice data", "evaluate");
    CommonOptions            common;
    std::string              model_dir, base_dir, out_dir, scoring = "generate";
    std::vector<std::string> data, expert_args;
    std::string              experts_only, fixed_weights;
    bool                     merge = false;
    TextFlags                text;
    ModelFlags               model_flags;
    app.add_option("--model", model_dir, "Model folder: base/fine-tuned checkpoint or LoRA adapter")->required();
    app.add_option("--base", base_dir, "Base for an adapter (default: from its adapter_config.json)");
    app.add_option("--data", data, "jsonl file(s) from prepare-data")->required();
    app.add_option("--out", out_dir, "Output folder: predictions.csv, metrics.json")->required();
    app.add_option("--scoring", scoring, "generate (greedy), rank (best choice likelihood) or teacher-forced (the seed's)")
        ->capture_default_str()
        ->check(CLI::IsMember({ "generate", "rank", "teacher-forced" }));
    app.add_option("--expert", expert_args, "With a base as --model: LoRA experts NAME=DIR for a static mixture");
    app.add_option("--experts-only", experts_only, "Run a single expert (by name) of the gate folder or --expert list");
    app.add_option("--fixed-weights", fixed_weights, "Run a static mixture w1,w2,... of the experts instead of the gate");
    app.add_flag("--merge", merge, "Fold the static mixture into the base weights before running");
    add_text_flags(app, text);
    add_model_flags(app, model_flags);
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        const c10::ScalarType dtype  = parse_float_dtype(model_flags.dtype);
        LoadedT5              loaded = load_t5_any(model_dir, base_dir, dtype, parse_device(common.device), model_flags.run);
        StaticMixture mix{ {}, experts_only, {}, merge };
        for (const auto & e : expert_args) {
            mix.experts.push_back(parse_expert_spec(e));
        }
        for (const auto & w : split_list(fixed_weights)) {
            const std::optional<double> value = parse_number(w);
            if (!value) {
                throw Error("--fixed-weights: '" + w + "' is not a number");
            }
            mix.fixed_weights.push_back(*value);
        }
        apply_static_mixture(loaded.base.model, loaded.adapters, mix, dtype);
        const std::vector<std::string> routed   = loaded.adapters.routed_modules();
        GateLog *                      gate_log = routed.empty() ? nullptr : &loaded.adapters.mixture->log();

        const auto records = read_mcq_files(data);
        const auto start   = std::chrono::steady_clock::now();
        const PredictResult result = predict_mcq(loaded.base.model, loaded.base.tokenizer, records, text.setup(),
                                                 parse_scoring(scoring), text.eval_batch_size, gate_log);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        nlohmann::json metrics   = answer_metrics(result.predictions);
        metrics["model"]         = model_dir;
        metrics["model_kind"]    = loaded.adapters.description;
        metrics["base"]          = loaded.base.dir;
        metrics["data"]          = data;
        metrics["scoring"]       = scoring;
        metrics["loss"]          = result.loss;
        metrics["examples_per_second"] = static_cast<double>(records.size()) / std::max(seconds, 1e-9);

        StagedDirectory out(out_dir);
        write_predictions_csv((fs::path(out.path()) / "predictions.csv").string(), result.predictions);
        write_json_file((fs::path(out.path()) / "metrics.json").string(), metrics);
        if (gate_log != nullptr) {
            std::vector<std::string> names;
            for (const auto & e : loaded.adapters.mixture->experts()) {
                names.push_back(e.name);
            }
            write_routing(out.path(), collect_routing(*gate_log, routed, names), result.predictions);
        }
        out.commit();

        const auto & o = metrics["overall"];
        std::printf("evaluate (%s, %s): %lld examples, accuracy %.4f, substring %.4f, EM %.2f, F1 %.2f -> %s\n",
                    loaded.adapters.description.c_str(), scoring.c_str(), static_cast<long long>(o["count"].get<int64_t>()),
                    o["accuracy"].get<double>(), o["substring_accuracy"].get<double>(), o["squad_em"].get<double>(),
                    o["squad_f1"].get<double>(), out_dir.c_str());
        for (const auto & [domain, s] : metrics["per_domain"].items()) {
            std::printf("  %-20s %5lld  accuracy %.4f\n", domain.c_str(), static_cast<long long>(s["count"].get<int64_t>()),
                        s["accuracy"].get<double>());
        }
    });
}
