// Classifier metrics against values worked out by hand (scikit-learn's definitions), and the
// confusion matrix files.
#include "core/error.h"
#include "eval/classification_metrics.h"
#include "support/temp_dir.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace cgm;
using namespace cgm::test;

TEST_CASE("classification metrics: accuracy, per-class precision/recall/F1, macro-F1, confusion", "[unit][classify]") {
    // 3 classes; class 2 never occurs as target or prediction of class 2 correctly.
    //   true:      0 0 0 1 1 2
    //   predicted: 0 0 1 1 0 1
    const ClassificationMetrics m = classification_metrics({ 0, 0, 0, 1, 1, 2 }, { 0, 0, 1, 1, 0, 1 }, 4);
    REQUIRE(m.count == 6);
    REQUIRE(m.accuracy == Approx(3.0 / 6.0));
    REQUIRE(m.confusion == std::vector<std::vector<int64_t>>{ { 2, 1, 0, 0 }, { 1, 1, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 0, 0 } });
    // class 0: precision 2/3, recall 2/3; class 1: precision 1/3, recall 1/2; class 2: 0, 0.
    REQUIRE(m.per_class[0].precision == Approx(2.0 / 3.0));
    REQUIRE(m.per_class[0].recall == Approx(2.0 / 3.0));
    REQUIRE(m.per_class[0].f1 == Approx(2.0 / 3.0));
    REQUIRE(m.per_class[1].precision == Approx(1.0 / 3.0));
    REQUIRE(m.per_class[1].recall == Approx(0.5));
    REQUIRE(m.per_class[1].f1 == Approx(0.4));
    REQUIRE(m.per_class[2].f1 == 0.0);
    REQUIRE(m.per_class[2].support == 1);
    // Class 3 occurs nowhere: left out of the macro average, as scikit-learn does.
    REQUIRE(m.macro_f1 == Approx((2.0 / 3.0 + 0.4 + 0.0) / 3.0));

    const nlohmann::json j = m.to_json({ "a", "b", "c", "d" });
    REQUIRE(j["per_class"]["b"]["support"] == 2);
    REQUIRE(j["macro_f1"].get<double>() == Approx(m.macro_f1));
}

TEST_CASE("classification metrics refuse classes out of range and unequal lengths", "[unit][classify]") {
    REQUIRE_THROWS_AS(classification_metrics({ 0, 4 }, { 0, 0 }, 4), Error);
    REQUIRE_THROWS_AS(classification_metrics({ 0 }, { -1 }, 4), Error);
    REQUIRE_THROWS_AS(classification_metrics({ 0, 1 }, { 0 }, 4), Error);
}

TEST_CASE("the confusion matrix is written as CSV with class names, and drawn", "[unit][classify]") {
    TempDir                     dir;
    const ClassificationMetrics m = classification_metrics({ 0, 1, 1 }, { 0, 1, 0 }, 2);
    write_confusion(dir.file("confusion.csv"), dir.file("confusion.png"), m, { "cat, big", "dog" });
    std::ifstream      in(dir.file("confusion.csv"));
    const std::string  csv((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(csv == "true\\predicted,cat_ big,dog\ncat_ big,1,0\ndog,1,1\n");
    // The picture needs gnuplot (installed by scripts/install-deps); without it only the CSV exists.
    if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
        REQUIRE(std::filesystem::file_size(dir.file("confusion.png")) > 0);
    }
}
