// Long lists in error messages: a count and the first few on the line, the rest in the debug log.
#include "core/error.h"
#include "core/item_list.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> tensor_names(size_t n) {
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) {
        names.push_back("encoder.block." + std::to_string(i) + ".layer.0.SelfAttention.q.weight");
    }
    return names;
}

// What `make_message` logs at debug level while it runs.
template <typename F> std::string debug_log_of(F make_message) {
    std::ostringstream log;
    const auto         previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
    make_message();
    spdlog::set_default_logger(previous);
    return log.str();
}

}  // namespace

TEST_CASE("a long list in an error is its count, the first three and how many more; the debug log has all",
          "[unit][item-list]") {
    const std::vector<std::string> names = tensor_names(45);
    std::string                    line;
    const std::string              log = debug_log_of([&] { line = summarize_items(names, "with wrong shape"); });
    REQUIRE(line == "45 with wrong shape (" + names[0] + ", " + names[1] + ", " + names[2] +
                        " and 42 more (--log-level debug lists all))");
    for (const auto & name : names) {
        REQUIRE_THAT(log, Contains(name));
    }
}

TEST_CASE("a short list in an error is given whole", "[unit][item-list]") {
    REQUIRE(summarize_items({ "lm_head.weight" }, "missing") == "1 missing (lm_head.weight)");
    const std::vector<std::string> three = tensor_names(3);
    REQUIRE(summarize_items(three, "unexpected") == "3 unexpected (" + three[0] + ", " + three[1] + ", " + three[2] + ")");
    REQUIRE(debug_log_of([&] { summarize_items(three, "unexpected"); }).empty());  // the line already has them
}

TEST_CASE("a checkpoint whose every tensor has the wrong shape is refused in a short line naming the count",
          "[unit][item-list][checkpoint]") {
    const auto fixture = fixture_or_skip("t5", "mis-shaped checkpoint message");
    if (!fixture) {
        return;
    }
    const std::string model  = fixture->path(fixture->manifest["model_dir"]);
    NamedTensors      params = T5Model::load(model).named_parameters();
    for (auto & [name, t] : params) {
        t = at::ones({ 1 });
    }
    TempDir dir;
    fs::copy_file(model + "/config.json", dir.file("config.json"));
    write_safetensors(dir.file("model.safetensors"), params);
    std::string what;
    try {
        T5Model::load(dir.path());
    } catch (const Error & e) {
        what = e.what();
    }
    std::vector<std::string> names;  // the message lists them in name order
    for (const auto & [name, t] : params) {
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    REQUIRE_THAT(what, Contains(std::to_string(names.size()) + " with wrong shape (" + names[0] + " [1]"));
    REQUIRE_THAT(what, Contains(" and " + std::to_string(names.size() - 3) + " more (--log-level debug lists all)"));
    REQUIRE_THAT(what, !Contains(names[3] + " "));
}
