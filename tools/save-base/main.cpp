// save-base: validate a Hugging Face T5 or BEiT folder (or initialise one from a config) and write
// the project's base checkpoint in the same layout (config.json + model.safetensors + tokenizer or
// preprocessor files), so transformers reads it back. For BEiT, --labels puts a new head on.
// --merge writes the same layout with a LoRA adapter or a static mixture of experts folded into
// the base weights (PEFT's merge_and_unload).
#include "adapters/adapter_folder.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/runtime.h"
#include "eval/beit_folder.h"
#include "eval/t5_folder.h"
#include "io/atomic_file.h"
#include "io/hf_checkpoint.h"
#include "io/json_file.h"
#include "models/beit.h"
#include "models/beit_base.h"
#include "models/model_family.h"
#include "models/t5.h"
#include "text/t5_tokenizer.h"
#include "train/image_classify_task.h"
#include "train/trainer.h"
#include "vision/image_set.h"

#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <optional>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

std::string with_thousands(int64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
        s.insert(static_cast<size_t>(i), ",");
    }
    return s;
}

// Tokenizer files (validated against the model) and generation_config.json to copy.
std::vector<std::string> files_to_copy(const std::string & hf_dir, const std::string & tokenizer_dir,
                                       const T5Config & config) {
    std::vector<std::string> files;
    const std::string        dir = tokenizer_dir.empty() ? hf_dir : tokenizer_dir;
    if (!dir.empty() && (fs::exists(fs::path(dir) / "spiece.model") || !tokenizer_dir.empty())) {
        const T5Tokenizer tokenizer(dir);
        if (tokenizer.size() > config.vocab_size) {
            fail(dir, "tokenizer has " + std::to_string(tokenizer.size()) + " tokens but the model's vocab_size is " +
                          std::to_string(config.vocab_size));
        }
        for (const auto & f : hf_side_files(dir)) {
            if (fs::path(f).filename() != "generation_config.json") {
                files.push_back(f);
            }
        }
    } else {
        spdlog::warn("{}: no spiece.model; the checkpoint will have no tokenizer (pass --tokenizer DIR)",
                     hf_dir.empty() ? "--init-config" : hf_dir);
    }
    if (!hf_dir.empty() && fs::exists(fs::path(hf_dir) / "generation_config.json")) {
        files.push_back((fs::path(hf_dir) / "generation_config.json").string());
    }
    return files;
}

struct Args {
    std::string              hf_dir, init_config, out_dir, dtype = "f32", tokenizer_dir, labels;
    int64_t                  probe_epochs = 0;
    double                   probe_lr     = 2e-4;
    std::vector<std::string> train, val;
    // --merge: an adapter or gate folder (or a base with --expert) to fold into the base weights.
    std::string              merge_dir, base_dir, fixed_weights, experts_only;
    std::vector<std::string> experts;
};

// Either a Hugging Face folder, or a config.json to initialise from (training from scratch).
std::string config_path_of(const Args & a) {
    return a.init_config.empty() ? (fs::path(a.hf_dir) / "config.json").string() : a.init_config;
}

// The seed's linear probe (Generate_Base_Model): the classifier alone trained on --train, the
// best by validation accuracy written as the base, with the trainer's files beside it.
void probe_head(const Args & a, const CommonOptions & common, BeitModel & model, const nlohmann::json & config,
                const std::vector<std::string> & files) {
    if (a.train.empty() || a.val.empty()) {
        fail("--probe-epochs", "needs --train and --val image splits");
    }
    require_data_of_family(a.train, ModelFamily::beit);
    require_data_of_family(a.val, ModelFamily::beit);
    NamedTensors head;
    for (auto & [name, t] : model.named_parameters()) {
        if (name.rfind("classifier.", 0) == 0) {
            head.emplace_back(name, t.requires_grad_(true));
        }
    }
    const ImageProcessorConfig processor = image_processor_of(a.hf_dir, model.config());
    BeitBase                   base{ a.hf_dir, std::move(model), processor };
    TrainOptions options;
    options.epochs     = a.probe_epochs;
    options.lr         = a.probe_lr;
    options.batch_size = 16;  // the seed's: 16 x 4 accumulated
    options.grad_accum = 4;
    options.seed       = common.seed;
    ImageClassifyTask task(base, read_image_sets(a.train), read_image_sets(a.val),
                           { 32, head, [&](const std::string & dir) {
                                 write_hf_model_dir(dir, config, base.model.named_parameters(), files);
                             } });
    const TrainResult r = train(task, options, a.out_dir);
    std::printf("save-base: linear probe, %s\n", describe(r).c_str());
    model = std::move(base.model);
}

void save_beit_base(const Args & a, const CommonOptions & common) {
    if (!a.tokenizer_dir.empty()) {
        fail("--tokenizer", "a BEiT base has no tokenizer");
    }
    const c10::ScalarType dtype  = parse_float_dtype(a.dtype);
    const std::string     source = config_path_of(a);
    BeitModel model = a.init_config.empty() ? BeitModel::load(a.hf_dir, dtype, parse_device(common.device))
                                            : BeitModel::random(BeitConfig::read(source), common.seed, dtype,
                                                                parse_device(common.device));
    nlohmann::json config = read_json_file(source);
    if (!a.labels.empty()) {
        model.replace_head(split_list(a.labels), common.seed);
        const nlohmann::json labelled = model.config().to_json();
        for (const char * key : { "id2label", "label2id" }) {
            config[key] = labelled[key];
        }
        config.erase("num_labels");
    }
    config["torch_dtype"] = hf_dtype_name(dtype);
    std::vector<std::string> files;
    if (!a.hf_dir.empty() && fs::exists(fs::path(a.hf_dir) / "preprocessor_config.json")) {
        files.push_back((fs::path(a.hf_dir) / "preprocessor_config.json").string());
    }
    if (a.probe_epochs > 0) {
        probe_head(a, common, model, config, files);
    } else {
        StagedDirectory out(a.out_dir);
        write_hf_model_dir(out.path(), config, model.named_parameters(), files);
        out.commit();
    }
    std::printf("%s: %s parameters, %s%s -> %s\n", model.config().describe().c_str(),
                with_thousands(model.num_parameters()).c_str(), hf_dtype_name(dtype).c_str(),
                a.labels.empty() ? "" : ", new head", a.out_dir.c_str());
}

void save_t5_base(const Args & a, const CommonOptions & common) {
    if (!a.labels.empty() || a.probe_epochs > 0) {
        fail(a.labels.empty() ? "--probe-epochs" : "--labels", "a T5 base has no classification head");
    }
    const c10::ScalarType dtype  = parse_float_dtype(a.dtype);
    const c10::Device     device = parse_device(common.device);
    const std::string config_path = config_path_of(a);
    const T5Model     model       = a.init_config.empty()
                                        ? T5Model::load(a.hf_dir, dtype, device)
                                        : T5Model::random(T5Config::read(a.init_config), common.seed, dtype, device);
    const std::vector<std::string> files = files_to_copy(a.hf_dir, a.tokenizer_dir, model.config());
    const bool has_tokenizer = std::any_of(files.begin(), files.end(), [](const std::string & f) {
        return fs::path(f).filename() == "spiece.model";
    });

    nlohmann::json config = read_json_file(config_path);
    config["torch_dtype"] = hf_dtype_name(dtype);
    const std::string & out_dir = a.out_dir;
    StagedDirectory out(out_dir);
    write_hf_model_dir(out.path(), config, model.named_parameters(), files);
    out.commit();
    std::printf("%s: %s parameters, %s%s -> %s\n", model.config().describe().c_str(),
                with_thousands(model.num_parameters()).c_str(), hf_dtype_name(dtype).c_str(),
                has_tokenizer ? ", with tokenizer" : ", no tokenizer", out_dir.c_str());
}

// The static mixture --expert, --fixed-weights and --experts-only describe, checked against the
// kind of folder --merge names: a LoRA folds as it is, a gate only at fixed weights (its weights
// depend on each input, so no single W holds them), a base only with --expert experts.
StaticMixture mixture_to_fold(const Args & a, FolderKind kind) {
    StaticMixture mix = static_mixture_of(a.experts, a.experts_only, a.fixed_weights, true);
    const char * mixture_flag = !mix.experts.empty()        ? "--expert"
                                : !mix.fixed_weights.empty() ? "--fixed-weights"
                                : !mix.experts_only.empty()  ? "--experts-only"
                                                             : nullptr;
    switch (kind) {
        case FolderKind::model:
            if (mix.experts.empty()) {
                fail(a.merge_dir, "is a model folder: nothing to merge into it (give --expert NAME=DIR experts)");
            }
            if (!a.base_dir.empty()) {
                fail("--base", "is for an adapter or gate folder; " + a.merge_dir + " is itself the base");
            }
            break;
        case FolderKind::lora:
            if (mixture_flag != nullptr) {
                fail(mixture_flag, "is for a gate folder or a base with --expert experts, not for the LoRA adapter " +
                                       a.merge_dir);
            }
            break;
        case FolderKind::gate:
            if (!mix.experts.empty()) {
                fail("--expert", "not with a gate folder: its experts are the ones its gate_config.json names");
            }
            if (mix.fixed_weights.empty() && mix.experts_only.empty()) {
                fail(a.merge_dir, "a trained gate weighs the experts anew for every input and cannot be folded into "
                                  "the base weights; give --fixed-weights w1,w2,... (one per expert) or --experts-only NAME");
            }
            break;
    }
    return mix;
}

// Folds what `adapters` adds into the base weights: a LoRA (W + s B A per module, saved modules
// copied in) or a static mixture (W + sum_e w_e s_e B_e A_e); then no linear keeps an adapter.
void fold_into_base(AdaptableModel & model, Adapters & adapters, const StaticMixture & mix) {
    c10::NoGradGuard no_grad;
    if (adapters.kind == FolderKind::lora) {
        merge_lora(model.linear_modules(), *adapters.lora);
    } else {
        apply_static_mixture(model, adapters, mix, c10::kFloat);  // mix.merge: folds and detaches
    }
    for (const NamedLinear & m : model.linear_modules()) {
        if (m.linear->adapter || m.linear->replacement) {
            fail(m.path, "still carries an adapter after merging");
        }
    }
}

// A plain base folder (the base's config.json, tokenizer or preprocessor files) with the merged
// weights, cast to --dtype.
void write_merged(const Args & a, const std::string & base_dir, const AdaptableModel & model) {
    const c10::ScalarType dtype = parse_float_dtype(a.dtype);
    NamedTensors          tensors;
    for (const auto & [name, t] : model.named_parameters()) {
        tensors.emplace_back(name, t.detach().to(at::kCPU, dtype).contiguous());
    }
    nlohmann::json config = read_json_file((fs::path(base_dir) / "config.json").string());
    config["torch_dtype"] = hf_dtype_name(dtype);
    StagedDirectory out(a.out_dir);
    write_hf_model_dir(out.path(), config, tensors, hf_side_files(base_dir));
    out.commit();
}

void save_merged(const Args & a, const CommonOptions & common) {
    const StaticMixture mix    = mixture_to_fold(a, folder_kind(a.merge_dir));
    const std::string   base   = base_dir_of(a.merge_dir, a.base_dir);
    const c10::Device   device = parse_device(common.device);
    // Replacing the base would lose what was merged (the merged folder itself is an input, refused
    // before any work).
    if (std::error_code ec; fs::exists(a.out_dir) && fs::equivalent(a.out_dir, base, ec)) {
        fail("--out", a.out_dir + " is the base of " + a.merge_dir + "; write the merged base elsewhere");
    }
    parse_float_dtype(a.dtype);  // a bad --dtype fails before any loading
    carry_text_settings(a.merge_dir);
    // Loaded in float32 whatever --dtype: the sums are taken at full precision and cast once.
    const auto merge = [&](AdaptableModel & model, Adapters & adapters, const std::string & describe) {
        fold_into_base(model, adapters, mix);
        write_merged(a, base, model);
        std::printf("%s: %s merged into %s, %s -> %s\n", describe.c_str(), adapters.description.c_str(), base.c_str(),
                    a.dtype.c_str(), a.out_dir.c_str());
    };
    if (model_family_of(base) == ModelFamily::beit) {
        LoadedBeit loaded = load_beit_any(a.merge_dir, a.base_dir, c10::kFloat, device);
        merge(loaded.base.model, loaded.adapters, loaded.base.model.config().describe());
    } else {
        LoadedT5 loaded = load_t5_any(a.merge_dir, a.base_dir, c10::kFloat, device, {});
        merge(loaded.base.model, loaded.adapters, loaded.base.model.config().describe());
    }
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Validate a Hugging Face T5 or BEiT folder (or initialise one from a config) and write the "
                      "project's base checkpoint", "save-base");
    CommonOptions common;
    Args          a;
    auto * hf   = app.add_option("--hf", a.hf_dir, "Hugging Face model folder (config.json + model.safetensors)")->type_name(kPathType);
    auto * init = app.add_option("--init-config", a.init_config, "config.json of a T5 or BEiT to initialise randomly (uses --seed)")->type_name(kPathType);
    hf->excludes(init);
    app.add_option("--out", a.out_dir, "Output folder (replaced atomically if it holds an earlier checkpoint)")->type_name(kPathType)->required();
    app.add_option("--dtype", a.dtype, "Weight dtype to write: f32 or bf16")->capture_default_str();
    app.add_option("--tokenizer", a.tokenizer_dir, "T5: folder with spiece.model (default: the --hf folder)")->type_name(kPathType);
    app.add_option("--labels", a.labels, "BEiT: class names (comma-separated) of a new classification head");
    app.add_option("--probe-epochs", a.probe_epochs, "BEiT: train the head alone for E epochs on --train (the seed's linear probe)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--probe-lr", a.probe_lr, "BEiT: learning rate of the linear probe")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--train", a.train, "BEiT with --probe-epochs: training split(s) (DIR/train.safetensors)")->type_name(kPathType);
    app.add_option("--val", a.val, "BEiT with --probe-epochs: validation split(s)")->type_name(kPathType);
    auto * merge = app.add_option("--merge", a.merge_dir,
                                  "LoRA adapter or gate folder (or a base with --expert) to fold into the base weights")->type_name(kPathType);
    for (CLI::Option * other : { hf, init, app.get_option("--tokenizer"), app.get_option("--labels"),
                                 app.get_option("--probe-epochs") }) {
        merge->excludes(other);
    }
    app.add_option("--base", a.base_dir, "With --merge: the base (default: the one the adapter or gate names)")->type_name(kPathType)->needs(merge);
    app.add_option("--expert", a.experts, "With --merge of a base: LoRA experts NAME=DIR of a static mixture")->type_name(kNamedPathType)->needs(merge);
    app.add_option("--fixed-weights", a.fixed_weights, "With --merge: the static mixture's weights w1,w2,... (one per expert)")
        ->needs(merge);
    app.add_option("--experts-only", a.experts_only, "With --merge: fold one expert (by name) alone")->needs(merge);
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        if (!a.merge_dir.empty()) {
            save_merged(a, common);
            return;
        }
        if (a.hf_dir.empty() == a.init_config.empty()) {
            fail("save-base", "give exactly one of --hf, --init-config and --merge");
        }
        if (!a.hf_dir.empty() && !fs::is_directory(a.hf_dir)) {
            // "google/flan-t5-small" reads as a hub name: nothing is downloaded here.
            const bool hub_name = !fs::exists(a.hf_dir) && std::count(a.hf_dir.begin(), a.hf_dir.end(), '/') == 1;
            fail(a.hf_dir, hub_name ? "no such folder; --hf reads a local folder (for a hub model, download it first: "
                                      "huggingface-cli download " + a.hf_dir + " --local-dir DIR)"
                                    : "not a directory");
        }
        if (!a.hf_dir.empty()) {
            require_model_folder(a.hf_dir);  // an adapter, gate or dataset says what it is
        }
        const std::string source = config_path_of(a);
        model_family(read_json_file(source), source) == ModelFamily::beit ? save_beit_base(a, common)
                                                                          : save_t5_base(a, common);
    });
}
