#include "text/prompt.h"

#include "core/error.h"

#include <algorithm>

namespace cgm {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

PromptStyle parse_prompt_style(const std::string & name) {
    if (name == "seed") {
        return PromptStyle::seed;
    }
    if (name == "unifiedqa") {
        return PromptStyle::unifiedqa;
    }
    fail("--prompt", "unknown prompt style '" + name + "' (expected seed or unifiedqa)");
}

TargetStyle parse_target_style(const std::string & name) {
    if (name == "text") {
        return TargetStyle::text;
    }
    if (name == "letter") {
        return TargetStyle::letter;
    }
    fail("--target", "unknown target style '" + name + "' (expected text or letter)");
}

std::string render_prompt(const McqRecord & r, PromptStyle style) {
    const bool  uqa  = style == PromptStyle::unifiedqa;
    std::string text = r.question + (uqa ? " \\n" : " \n");
    for (size_t i = 0; i < r.choices.size(); ++i) {
        const char letter = static_cast<char>((uqa ? 'a' : 'A') + static_cast<int>(i));
        text += std::string(" (") + letter + ") " + r.choices[i];
    }
    return uqa ? lower(text) : text;
}

std::string render_target(const McqRecord & r, PromptStyle style, TargetStyle target, int64_t index) {
    const int64_t i   = index >= 0 ? index : r.label;
    const bool    uqa = style == PromptStyle::unifiedqa;
    if (target == TargetStyle::letter) {
        return std::string(1, static_cast<char>((uqa ? 'a' : 'A') + static_cast<int>(i)));
    }
    const std::string & text = r.choices.at(static_cast<size_t>(i));
    return uqa ? lower(text) : text;
}

}  // namespace cgm
