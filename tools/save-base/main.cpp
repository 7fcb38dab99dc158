// save-base: validate a Hugging Face T5 or BEiT folder (or initialise one from a config) and write
// the project's base checkpoint in the same layout (config.json + model.safetensors + tokenizer or
// preprocessor files), so transformers reads it back. For BEiT, --labels puts a new head on.
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/runtime.h"
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

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

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
    std::printf("save-base: linear probe, best val accuracy %.4f at step %lld of %lld\n", r.best_accuracy,
                static_cast<long long>(r.best_step), static_cast<long long>(r.steps));
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

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Validate a Hugging Face T5 or BEiT folder (or initialise one from a config) and write the "
                      "project's base checkpoint", "save-base");
    CommonOptions common;
    Args          a;
    auto * hf   = app.add_option("--hf", a.hf_dir, "Hugging Face model folder (config.json + model.safetensors)");
    auto * init = app.add_option("--init-config", a.init_config, "config.json of a T5 or BEiT to initialise randomly (uses --seed)");
    hf->excludes(init);
    app.add_option("--out", a.out_dir, "Output folder (replaced atomically if it holds an earlier checkpoint)")->required();
    app.add_option("--dtype", a.dtype, "Weight dtype to write: f32 or bf16")->capture_default_str();
    app.add_option("--tokenizer", a.tokenizer_dir, "T5: folder with spiece.model (default: the --hf folder)");
    app.add_option("--labels", a.labels, "BEiT: class names (comma-separated) of a new classification head");
    app.add_option("--probe-epochs", a.probe_epochs, "BEiT: train the head alone for E epochs on --train (the seed's linear probe)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--probe-lr", a.probe_lr, "BEiT: learning rate of the linear probe")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--train", a.train, "BEiT with --probe-epochs: training split(s) (DIR/train.safetensors)");
    app.add_option("--val", a.val, "BEiT with --probe-epochs: validation split(s)");
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        if (a.hf_dir.empty() == a.init_config.empty()) {
            fail("save-base", "give exactly one of --hf and --init-config");
        }
        if (!a.hf_dir.empty() && !fs::is_directory(a.hf_dir)) {
            fail(a.hf_dir, "not a directory");
        }
        const std::string source = config_path_of(a);
        model_family(read_json_file(source), source) == ModelFamily::beit ? save_beit_base(a, common)
                                                                          : save_t5_base(a, common);
    });
}
