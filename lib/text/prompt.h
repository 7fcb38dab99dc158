#pragma once
// The one place that turns a multiple-choice record into T5's input and target text.
#include "text/mcq.h"

#include <string>

namespace cgm {

enum class PromptStyle {
    seed,       // "question \n (A) c1 (B) c2"  (a real newline, as the seed code)
    unifiedqa,  // "question \n (a) c1 (b) c2"  lowercased, literal backslash-n, as UnifiedQA
};
enum class TargetStyle {
    text,    // the answer's text (the seed)
    letter,  // "A" ("a" in the unifiedqa style)
};

PromptStyle parse_prompt_style(const std::string & name);  // "seed" | "unifiedqa"
TargetStyle parse_target_style(const std::string & name);  // "text" | "letter"

std::string render_prompt(const McqRecord & record, PromptStyle style);
// The target for choice `index` (the label by default).
std::string render_target(const McqRecord & record, PromptStyle style, TargetStyle target, int64_t index = -1);

}  // namespace cgm
