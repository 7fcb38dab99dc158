// evaluate: run a T5 model (base, fine-tuned, LoRA adapter on its base, or a trained gate over
// LoRA experts) on multiple-choice records; writes predictions.csv and metrics.json, and for a
// gate its routing (gate_weights.safetensors, routing.csv, routing.png).
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/runtime.h"
#include "dist/world.h"
#include "eval/report.h"
#include "eval/routing.h"
#include "eval/beit_folder.h"
#include "eval/classification_metrics.h"
#include "eval/image_predict.h"
#include "eval/t5_folder.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "models/model_family.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

struct Flags {
    std::string              model_dir, base_dir, out_dir, scoring = "generate";
    std::vector<std::string> data, expert_args;
    std::string              experts_only, fixed_weights;
    bool                     merge = false;
    TextFlags                text;
    ModelFlags               model;
};

StaticMixture static_mixture(const Flags & f) {
    return static_mixture_of(f.expert_args, f.experts_only, f.fixed_weights, f.merge);
}

// metrics.json and predictions.csv (and the routing files and gate analytics for a gate, over
// `classes`, one key per prediction) written together.
void write_outputs(const Flags & f, nlohmann::json metrics, const Adapters & adapters, GateLog * gate_log,
                   const std::vector<Prediction> & predictions, const std::vector<std::string> & classes,
                   const std::function<void(const std::string &)> & extra) {
    metrics["model"]      = f.model_dir;
    metrics["model_kind"] = adapters.description;
    metrics["data"]       = f.data;
    // How the experts were combined, when they were: the gate, fixed weights, one expert, merged.
    if (adapters.mixture) {
        metrics["experts"]       = adapters.expert_names();
        metrics["fixed_weights"] = f.fixed_weights.empty() ? nlohmann::json() : nlohmann::json(f.fixed_weights);
        metrics["experts_only"]  = f.experts_only.empty() ? nlohmann::json() : nlohmann::json(f.experts_only);
        metrics["merge"]         = f.merge;
    }
    StagedDirectory out(f.out_dir);
    write_predictions_csv((fs::path(out.path()) / "predictions.csv").string(), predictions);
    write_json_file((fs::path(out.path()) / "metrics.json").string(), metrics);
    if (gate_log != nullptr) {
        write_routing(out.path(), collect_routing(*gate_log, adapters.routed_modules(), adapters.expert_names()), predictions,
                      classes);
    }
    extra(out.path());
    out.commit();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void evaluate_text(const Flags & f, const CommonOptions & common) {
    const c10::ScalarType dtype  = parse_float_dtype(f.model.dtype);
    LoadedT5              loaded = load_t5_any(f.model_dir, f.base_dir, dtype, parse_device(common.device), f.model.run);
    apply_static_mixture(loaded.base.model, loaded.adapters, static_mixture(f), dtype);
    GateLog * gate_log = loaded.adapters.gate_log();

    const auto          records = read_mcq_files(f.data);
    const auto          start   = std::chrono::steady_clock::now();
    const PredictResult result  = predict_mcq(loaded.base.model, loaded.base.tokenizer, records, f.text.setup(),
                                              parse_scoring(f.scoring), f.model.eval_batch_size, gate_log);
    nlohmann::json metrics         = answer_metrics(result.predictions);
    metrics["examples_per_second"] = static_cast<double>(records.size()) / std::max(seconds_since(start), 1e-9);
    metrics["base"]                = loaded.base.dir;
    metrics["scoring"]             = f.scoring;
    const auto &   o               = metrics["overall"];
    const auto     labeled         = o["count"].get<int64_t>();
    metrics["loss"]                = labeled > 0 ? nlohmann::json(result.loss) : nlohmann::json();
    metrics["batch_mean_loss"]     = labeled > 0 ? nlohmann::json(result.batch_mean_loss) : nlohmann::json();
    // Teacher-forced accuracy can be the copy artifact (README): rank accuracy goes beside it.
    std::optional<double> rank_accuracy;
    if (parse_scoring(f.scoring) == Scoring::teacher_forced && labeled > 0) {
        rank_accuracy = labeled_accuracy(predict_mcq(loaded.base.model, loaded.base.tokenizer, records, f.text.setup(),
                                                     Scoring::rank, f.model.eval_batch_size).predictions);
        metrics["rank_accuracy"] = *rank_accuracy;
        if (looks_like_copy_artifact(o["accuracy"].get<double>(), *rank_accuracy)) {
            spdlog::warn("teacher-forced accuracy {:.4f} is far above rank accuracy {:.4f}: the model may only copy its "
                         "decoder input (see README: teacher-forced accuracy)", o["accuracy"].get<double>(), *rank_accuracy);
        }
    }
    if (!dist::is_main()) {
        return;  // every rank scored its share; rank 0 writes and reports
    }
    write_outputs(f, metrics, loaded.adapters, gate_log, result.predictions, gate_classes(result.predictions, false),
                  [](const std::string &) {});

    if (labeled == 0) {
        std::printf("evaluate (%s, %s): %zu examples, none labeled: predictions only, no accuracy -> %s\n",
                    loaded.adapters.description.c_str(), f.scoring.c_str(), records.size(), f.out_dir.c_str());
        return;
    }
    const std::string scored = labeled == static_cast<int64_t>(records.size()) ? "" : ", " + std::to_string(labeled) + " labeled";
    std::printf("evaluate (%s, %s): %zu examples%s, accuracy %.4f, substring %.4f, EM %.2f, F1 %.2f -> %s\n",
                loaded.adapters.description.c_str(), f.scoring.c_str(), records.size(), scored.c_str(),
                o["accuracy"].get<double>(), o["substring_accuracy"].get<double>(), o["squad_em"].get<double>(),
                o["squad_f1"].get<double>(), f.out_dir.c_str());
    if (rank_accuracy) {
        std::printf("  rank accuracy %.4f (beside teacher-forced accuracy)\n", *rank_accuracy);
    }
    for (const auto & [domain, s] : metrics["per_domain"].items()) {
        std::printf("  %-20s %5lld  accuracy %.4f\n", domain.c_str(), static_cast<long long>(s["count"].get<int64_t>()),
                    s["accuracy"].get<double>());
    }
}

// Accuracy, macro-F1 and per-class scores overall and per domain; a confusion matrix per domain
// (confusion.csv/png for one domain, confusion-<domain>.csv/png for several).
void evaluate_images(const Flags & f, const CommonOptions & common) {
    const c10::ScalarType dtype  = parse_float_dtype(f.model.dtype);
    LoadedBeit            loaded = load_beit_any(f.model_dir, f.base_dir, dtype, parse_device(common.device));
    apply_static_mixture(loaded.base.model, loaded.adapters, static_mixture(f), dtype);
    GateLog * gate_log = loaded.adapters.gate_log();

    const ImageSet         images = read_image_sets(f.data);
    const auto             start  = std::chrono::steady_clock::now();
    const ImagePredictions p      = predict_images(loaded.base, images, f.model.eval_batch_size, gate_log);
    const int64_t          classes = loaded.base.model.config().num_labels();

    nlohmann::json                                     metrics;
    const std::map<std::string, ClassificationMetrics> per_domain =
        per_domain_metrics(images.domains, p.targets, p.predicted, classes);
    const ClassificationMetrics overall = classification_metrics(p.targets, p.predicted, classes);
    metrics["overall"]                  = overall.to_json(loaded.base.model.config().labels);
    for (const auto & [domain, m] : per_domain) {
        metrics["per_domain"][domain] = m.to_json(images.class_names.at(domain));
    }
    metrics["examples_per_second"] = static_cast<double>(images.size()) / std::max(seconds_since(start), 1e-9);
    metrics["base"]                = loaded.base.dir;
    metrics["loss"]                = p.result.loss;
    if (!dist::is_main()) {
        return;
    }
    write_outputs(f, metrics, loaded.adapters, gate_log, p.result.predictions, gate_classes(p.result.predictions, true),
                  [&](const std::string & dir) {
        for (const auto & [domain, m] : per_domain) {
            const std::string stem = per_domain.size() == 1 ? "confusion" : "confusion-" + domain;
            write_confusion((fs::path(dir) / (stem + ".csv")).string(), (fs::path(dir) / (stem + ".png")).string(), m,
                            images.class_names.at(domain));
        }
    });

    std::printf("evaluate (%s): %lld images, accuracy %.4f, macro-F1 %.4f -> %s\n", loaded.adapters.description.c_str(),
                static_cast<long long>(overall.count), overall.accuracy, overall.macro_f1, f.out_dir.c_str());
    for (const auto & [domain, m] : per_domain) {
        std::printf("  %-20s %5lld  accuracy %.4f  macro-F1 %.4f\n", domain.c_str(), static_cast<long long>(m.count),
                    m.accuracy, m.macro_f1);
    }
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Evaluate a T5 or BEiT model, LoRA adapter or gate folder", "evaluate");
    CommonOptions common;
    Flags         f;
    app.add_option("--model", f.model_dir, "Model folder: base/fine-tuned checkpoint, LoRA adapter or gate folder")->type_name(kPathType)->required();
    app.add_option("--base", f.base_dir, "Base for an adapter (default: from its adapter_config.json)")->type_name(kPathType);
    app.add_option("--data", f.data, "Data from prepare-data: jsonl file(s) for T5, DIR/<split>.safetensors for BEiT")->type_name(kPathType)->required();
    app.add_option("--out", f.out_dir, "Output folder: predictions.csv, metrics.json (+ confusion.csv/png for images)")->type_name(kPathType)->required();
    app.add_option("--scoring", f.scoring, "T5: generate (greedy), rank (best choice likelihood) or teacher-forced (the seed's)")
        ->capture_default_str()
        ->check(CLI::IsMember(scoring_names()));
    app.add_option("--expert", f.expert_args, "With a base as --model: LoRA experts NAME=DIR for a static mixture")->type_name(kNamedPathType);
    app.add_option("--experts-only", f.experts_only, "Run a single expert (by name) of the gate folder or --expert list");
    app.add_option("--fixed-weights", f.fixed_weights, "Run a static mixture w1,w2,... of the experts instead of the gate");
    app.add_flag("--merge", f.merge, "Fold the static mixture into the base weights before running");
    add_text_flags(app, f.text);
    add_model_flags(app, f.model);
    add_common_options(app, common);
    add_process_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        if (!f.base_dir.empty() && folder_kind(f.model_dir) == FolderKind::model) {
            fail("--base", f.model_dir + " is a model folder, which runs on its own; --base is the base of an adapter or gate folder");
        }
        const ModelFamily family = model_family_of(base_dir_of(f.model_dir, f.base_dir));
        reject_text_flags_for(family, app);
        apply_saved_settings({ f.model_dir }, app);
        require_data_of_family(f.data, family);
        family == ModelFamily::beit ? evaluate_images(f, common) : evaluate_text(f, common);
    });
}
