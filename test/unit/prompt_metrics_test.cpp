// Prompt rendering and answer metrics on known values.
#include "eval/metrics.h"
#include "text/prompt.h"

#include <catch2/catch.hpp>

using namespace cgm;

TEST_CASE("prompts: the seed's format and UnifiedQA's", "[unit][prompt]") {
    const McqRecord r{ "1", "d", "Who might wear dark glasses indoors?", { "blind person", "Glove box" }, 0 };
    REQUIRE(render_prompt(r, PromptStyle::seed) == "Who might wear dark glasses indoors? \n (A) blind person (B) Glove box");
    REQUIRE(render_prompt(r, PromptStyle::unifiedqa) == "who might wear dark glasses indoors? \\n (a) blind person (b) glove box");
    REQUIRE(render_target(r, PromptStyle::seed, TargetStyle::text) == "blind person");
    REQUIRE(render_target(r, PromptStyle::seed, TargetStyle::letter) == "A");
    REQUIRE(render_target(r, PromptStyle::unifiedqa, TargetStyle::letter, 1) == "b");
    REQUIRE(render_target(r, PromptStyle::unifiedqa, TargetStyle::text, 1) == "glove box");
    REQUIRE_THROWS(parse_prompt_style("chat"));
}

TEST_CASE("SQuAD normalization, EM and F1", "[unit][metrics]") {
    REQUIRE(normalize_answer("The  Cat, sat!") == "cat sat");
    REQUIRE(normalize_answer("an apple a day") == "apple day");
    REQUIRE(exact_match("The cat.", "cat"));
    REQUIRE(!exact_match("cat sat", "cat"));
    REQUIRE(token_f1("cat sat", "cat") == Approx(2.0 / 3.0));            // p 1/2, r 1
    REQUIRE(token_f1("the cat sat on mat", "a cat on the mat") == Approx(6.0 / 7.0));  // p 3/4, r 3/3
    REQUIRE(token_f1("dog", "cat") == 0.0);
    REQUIRE(token_f1("", "") == 1.0);
    REQUIRE(substring_match("a blind person", "blind person"));
    REQUIRE(!substring_match("blind", "blind person"));

    AnswerScores s;
    s.add("The cat", "cat");
    s.add("a dog", "cat");
    REQUIRE(s.accuracy() == 0.5);
    REQUIRE(s.substring_accuracy() == 0.5);
    REQUIRE(s.mean_f1() == 0.5);
}
