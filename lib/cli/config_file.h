#pragma once
// --config files: the subset of TOML that flags need, read strictly so that every mistake is
// reported with its file and line instead of being half understood.
#include <string>
#include <vector>

namespace cgm {

// One value as written: a string without its quotes, a number or boolean as its text.
struct ConfigValue {
    enum class Kind { string, number, boolean };
    Kind        kind = Kind::string;
    std::string text;
};

// One `key = value` line.
struct ConfigEntry {
    std::string              key;   // as written, for messages
    std::string              flag;  // the flag it sets: the key with '_' read as '-'
    std::vector<ConfigValue> values;
    bool                     array = false;
    int                      line  = 0;
};

// The entries of `path` that apply to `program`, in file order: the top-level keys and those of
// its table ([lora-finetune] or [lora_finetune]), which win over top-level ones; the tables of the
// other programs are checked and skipped. Understood: comments, `key = value` with strings ("..."
// or '...'), integers, floats, true/false and arrays of these (over several lines too), `[table]`
// headers. Anything else, a key given twice and a table that is not a program are an Error
// "FILE:LINE: what".
std::vector<ConfigEntry> read_config_file(const std::string & path, const std::string & program);

}  // namespace cgm
