// The T5 tokenizer against Hugging Face's slow T5Tokenizer: every fixture of kind "t5_tokenizer".
#include "support/fixtures.h"
#include "text/t5_tokenizer.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

// Item i of a ragged tensor stored as a flat tensor plus N+1 offsets.
at::Tensor ragged(const Fixture & f, const std::string & data, const std::string & offsets, int64_t i) {
    const at::Tensor off = f.get(offsets);
    const int64_t    b = off[i].item<int64_t>(), e = off[i + 1].item<int64_t>();
    return f.get(data).slice(0, b, e);
}

std::string as_string(const at::Tensor & bytes) {
    return std::string(static_cast<const char *>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()));
}

std::vector<int64_t> as_ids(const at::Tensor & t) {
    const at::Tensor c = t.contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::string join(const std::vector<std::string> & parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        out += (i ? " " : "") + parts[i];
    }
    return out;
}

}  // namespace

TEST_CASE("T5 tokenizer matches Hugging Face: ids, pieces, decoding", "[parity][tokenizer]") {
    for (const Fixture & f : fixtures_or_skip("t5_tokenizer", "tokenizer parity")) {
        const T5Tokenizer tok(f.path(f.manifest["tokenizer_dir"]));
        REQUIRE(tok.size() == f.manifest["vocab_size"].get<int64_t>());
        REQUIRE(tok.sentinel_id(0) == f.manifest["special_ids"]["<extra_id_0>"].get<int64_t>());
        const auto & strings = f.manifest["strings"];
        for (size_t i = 0; i < strings.size(); ++i) {
            const auto        n    = static_cast<int64_t>(i);
            const std::string text = as_string(ragged(f, "text_utf8", "text_offsets", n));
            INFO(f.name << " string " << i << " (" << strings[i]["category"].get<std::string>() << "): '" << text << "'");
            REQUIRE(text == strings[i]["text"].get<std::string>());
            const std::vector<int64_t> ids = tok.encode(text);
            CHECK(join(tok.pieces(ids)) == strings[i]["pieces"].get<std::string>());
            REQUIRE(ids == as_ids(ragged(f, "input_ids", "input_ids_offsets", n)));
            REQUIRE(tok.decode(ids) == as_string(ragged(f, "decoded_utf8", "decoded_offsets", n)));
        }
    }
}

TEST_CASE("T5 tokenizer batches: padding, truncation keeps EOS last", "[parity][tokenizer]") {
    for (const Fixture & f : fixtures_of_kind("t5_tokenizer")) {
        const T5Tokenizer        tok(f.path(f.manifest["tokenizer_dir"]));
        std::vector<std::string> all;
        for (const auto & s : f.manifest["strings"]) {
            all.push_back(s["text"].get<std::string>());
        }
        const auto & call  = f.manifest["batch_call"];
        TokenBatch   batch = tok.encode_batch(all, call["max_length"].get<int64_t>(), false);
        INFO(f.name);
        REQUIRE(at::equal(batch.input_ids, f.get("batch.input_ids")));
        REQUIRE(at::equal(batch.attention_mask, f.get("batch.attention_mask")));

        const auto &             maxlen_call = f.manifest["batch_maxlen_call"];
        std::vector<std::string> some;
        for (const auto & i : maxlen_call["strings"]) {
            some.push_back(all[i.get<size_t>()]);
        }
        batch = tok.encode_batch(some, maxlen_call["max_length"].get<int64_t>(), true);
        REQUIRE(at::equal(batch.input_ids, f.get("batch_maxlen.input_ids")));
        REQUIRE(at::equal(batch.attention_mask, f.get("batch_maxlen.attention_mask")));
    }
}
