#include "text/t5_tokenizer.h"

#include "core/error.h"
#include "io/json_file.h"
#include "text/sentencepiece.h"

#include <ATen/ops/full.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void strip_right(std::string & s) {
    while (!s.empty() && is_space(s.back())) {
        s.pop_back();
    }
}

void strip_left(std::string & s) {
    size_t i = 0;
    while (i < s.size() && is_space(s[i])) {
        ++i;
    }
    s.erase(0, i);
}

void replace_all(std::string & s, const std::string & from, const std::string & to) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
    }
}

// A piece of input text: plain text for sentencepiece, or one added token.
struct Chunk {
    std::string text;
    int64_t     special_id = -1;
    bool        strips     = false;  // sentinels eat the whitespace around them
};

}  // namespace

T5Tokenizer::T5Tokenizer(const std::string & dir) {
    const std::string model = (fs::path(dir) / "spiece.model").string();
    if (!fs::exists(model)) {
        fail(model, "missing (a T5 tokenizer needs its sentencepiece model)");
    }
    sp_      = std::make_unique<SentencePiece>(model);
    sp_size_ = sp_->size();
    if (sp_size_ < 3 || sp_->id_to_piece(0) != "<pad>" || sp_->id_to_piece(1) != "</s>" || sp_->id_to_piece(2) != "<unk>") {
        fail(model, "not a T5 vocabulary (ids 0, 1, 2 must be <pad>, </s>, <unk>)");
    }
    const std::string config = (fs::path(dir) / "tokenizer_config.json").string();
    if (fs::exists(config)) {
        const nlohmann::json j = read_json_file(config);
        if (j.contains("extra_ids")) {
            if (!j["extra_ids"].is_number_unsigned()) {
                fail(config, "'extra_ids' must be a non-negative integer");
            }
            extra_ids_ = j["extra_ids"].get<int64_t>();
        }
        if (j.contains("clean_up_tokenization_spaces") && j["clean_up_tokenization_spaces"].is_boolean()) {
            clean_up_spaces_ = j["clean_up_tokenization_spaces"].get<bool>();
        }
    }
}

T5Tokenizer::~T5Tokenizer()                      = default;
T5Tokenizer::T5Tokenizer(T5Tokenizer &&) noexcept = default;

int64_t T5Tokenizer::size() const {
    return sp_size_ + extra_ids_;
}

int64_t T5Tokenizer::sentinel_id(int64_t i) const {
    return size() - 1 - i;
}

bool T5Tokenizer::is_special(int64_t id) const {
    return id == pad_id() || id == eos_id() || id == unk_id() || id >= sp_size_;
}

std::vector<int64_t> T5Tokenizer::encode_without_eos(const std::string & text) const {
    // 1. Split on the added tokens, leftmost-longest: <pad>, </s>, <unk>, <extra_id_N>.
    std::vector<Chunk> chunks;
    std::string        pending;
    for (size_t i = 0; i < text.size();) {
        int64_t id = -1;
        size_t  len = 0;
        bool    sentinel = false;
        for (const auto & [literal, literal_id] : { std::pair<const char *, int64_t>{ "<pad>", pad_id() },
                                                    { "</s>", eos_id() }, { "<unk>", unk_id() } }) {
            if (text.compare(i, std::strlen(literal), literal) == 0) {
                id  = literal_id;
                len = std::strlen(literal);
            }
        }
        static const std::string kSentinel = "<extra_id_";
        if (id < 0 && text.compare(i, kSentinel.size(), kSentinel) == 0) {
            size_t j = i + kSentinel.size();
            while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) {
                ++j;
            }
            const std::string digits = text.substr(i + kSentinel.size(), j - i - kSentinel.size());
            if (!digits.empty() && digits.size() <= 6 && j < text.size() && text[j] == '>' &&
                std::to_string(std::stoll(digits)) == digits && std::stoll(digits) < extra_ids_) {
                id       = sentinel_id(std::stoll(digits));
                len      = j + 1 - i;
                sentinel = true;
            }
        }
        if (id < 0) {
            pending += text[i++];
            continue;
        }
        chunks.push_back({ pending, -1, false });
        pending.clear();
        chunks.push_back({ "", id, sentinel });
        i += len;
    }
    chunks.push_back({ pending, -1, false });

    // 2. Sentinels strip the whitespace of their neighbours (AddedToken lstrip/rstrip).
    for (size_t i = 0; i < chunks.size(); ++i) {
        if (chunks[i].strips) {
            strip_right(chunks[i - 1].text);  // a special chunk always has text chunks on both sides
            strip_left(chunks[i + 1].text);
        }
    }

    // 3. Each text chunk goes through sentencepiece on its own (so it gets its own '▁').
    std::vector<int64_t> ids;
    for (const Chunk & c : chunks) {
        if (c.special_id >= 0) {
            ids.push_back(c.special_id);
        } else if (!c.text.empty()) {
            const std::vector<int> piece_ids = sp_->encode(c.text);
            ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
        }
    }
    return ids;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string & text) const {
    std::vector<int64_t> ids = encode_without_eos(text);
    if (ids.empty() || ids.back() != eos_id()) {
        ids.push_back(eos_id());
    }
    return ids;
}

TokenBatch T5Tokenizer::encode_batch(const std::vector<std::string> & texts, int64_t max_length,
                                     bool pad_to_max_length) const {
    std::vector<std::vector<int64_t>> rows;
    int64_t                           longest = 0;
    for (const auto & text : texts) {
        std::vector<int64_t> ids = encode_without_eos(text);
        // HF reserves one position for EOS before truncating, then adds it if missing.
        if (max_length > 0 && static_cast<int64_t>(ids.size()) + 1 > max_length) {
            ids.resize(static_cast<size_t>(std::max<int64_t>(max_length - 1, 0)));
        }
        if (ids.empty() || ids.back() != eos_id()) {
            ids.push_back(eos_id());
        }
        longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
        rows.push_back(std::move(ids));
    }
    const int64_t width = pad_to_max_length && max_length > 0 ? max_length : longest;
    const auto    n     = static_cast<int64_t>(rows.size());
    TokenBatch    batch{ at::full({ n, width }, pad_id(), at::kLong), at::full({ n, width }, 0, at::kLong) };
    auto          ids  = batch.input_ids.accessor<int64_t, 2>();
    auto          mask = batch.attention_mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < n; ++r) {
        for (size_t c = 0; c < rows[r].size(); ++c) {
            ids[r][static_cast<int64_t>(c)]  = rows[r][c];
            mask[r][static_cast<int64_t>(c)] = 1;
        }
    }
    return batch;
}

std::string T5Tokenizer::decode(const std::vector<int64_t> & ids) const {
    std::vector<int> kept;
    for (const int64_t id : ids) {
        if (id >= 0 && !is_special(id)) {
            kept.push_back(static_cast<int>(id));
        }
    }
    std::string text = sp_->decode(kept);
    strip_left(text);
    strip_right(text);
    if (clean_up_spaces_) {
        for (const char * p : { ".", "?", "!", "," }) {
            replace_all(text, std::string(" ") + p, p);
        }
        replace_all(text, " ' ", "'");
        for (const char * p : { "n't", "'m", "'s", "'ve", "'re" }) {
            replace_all(text, std::string(" ") + p, p);
        }
    }
    return text;
}

std::vector<std::string> T5Tokenizer::pieces(const std::vector<int64_t> & ids) const {
    std::vector<std::string> out;
    for (const int64_t id : ids) {
        if (id >= sp_size_ && id < size()) {
            out.push_back("<extra_id_" + std::to_string(size() - 1 - id) + ">");
        } else if (id >= 0 && id < sp_size_) {
            out.push_back(sp_->id_to_piece(static_cast<int>(id)));
        } else {
            out.push_back("<invalid:" + std::to_string(id) + ">");
        }
    }
    return out;
}

}  // namespace cgm
