// safetensors: round trips, and a clear error naming the file for every malformed input.
#include "core/error.h"
#include "io/safetensors.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;

namespace {

std::string u64_le(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) {
        s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
    return s;
}

// A file with the given JSON header and `data_bytes` zero bytes of data.
std::string file_with_header(const std::string & header, size_t data_bytes) {
    return u64_le(header.size()) + header + std::string(data_bytes, '\0');
}

void require_error(const std::string & path, const std::string & needle) {
    try {
        SafetensorsReader reader(path);
        FAIL("no error for a malformed file; expected one mentioning '" << needle << "'");
    } catch (const Error & e) {
        const std::string what = e.what();
        INFO(what);
        REQUIRE_THAT(what, Contains(path));
        REQUIRE_THAT(what, Contains(needle));
        REQUIRE(what.find('\n') == std::string::npos);
    }
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, order, dtypes, shapes and values", "[unit][safetensors]") {
    TempDir      dir;
    NamedTensors tensors = {
        { "f32", at::randn({ 3, 4 }) },
        { "bf16", at::randn({ 5 }).to(at::kBFloat16) },
        { "f16", at::randn({ 2, 2 }).to(at::kHalf) },
        { "i64", at::arange(7, at::kLong) },
        { "i32", at::arange(3, at::kInt) },
        { "u8", at::arange(9, at::kByte).view({ 3, 3 }) },
        { "bool", at::ones({ 2 }, at::kBool) },
        { "scalar", at::scalar_tensor(2.5) .to(at::kFloat) },
        { "empty", at::empty({ 0, 3 }) },
        { "strided", at::randn({ 4, 3 }).t() },  // non-contiguous input
    };
    write_safetensors(dir.file("a.safetensors"), tensors, { { "format", "pt" }, { "note", "x" } });
    SafetensorsReader reader(dir.file("a.safetensors"));
    REQUIRE(reader.names().size() == tensors.size());
    REQUIRE(reader.metadata().at("note") == "x");
    for (size_t i = 0; i < tensors.size(); ++i) {
        INFO(tensors[i].first);
        REQUIRE(reader.names()[i] == tensors[i].first);
        const at::Tensor t = reader.tensor(tensors[i].first);
        REQUIRE(t.scalar_type() == tensors[i].second.scalar_type());
        REQUIRE(at::equal(t, tensors[i].second));
    }
    // Mapped tensors are private copies: writing to one leaves the file as it was.
    reader.tensor("f32").fill_(0);
    REQUIRE(at::equal(SafetensorsReader(dir.file("a.safetensors")).tensor("f32"), tensors[0].second));
}

TEST_CASE("safetensors reads the Hugging Face layout: metadata, header padded with spaces, exact values", "[unit][safetensors]") {
    // Bytes laid out by hand as the Python writer does: __metadata__ first, the header padded
    // with spaces to a multiple of 8, F32 and I64 data back to back, little-endian.
    const std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                               R"("ids":{"dtype":"I64","shape":[3],"data_offsets":[16,40]}})";
    const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
    std::string       data;
    for (const float v : { 1.5f, -2.0f, 0.25f, 1e-3f }) {
        data.append(reinterpret_cast<const char *>(&v), 4);
    }
    for (const int64_t v : { int64_t(7), int64_t(-1), int64_t(1) << 40 }) {
        data.append(reinterpret_cast<const char *>(&v), 8);
    }
    TempDir dir;
    write_bytes(dir.file("hf.safetensors"), u64_le(padded.size()) + padded + data);
    const SafetensorsReader reader(dir.file("hf.safetensors"));
    REQUIRE(reader.names() == std::vector<std::string>{ "w", "ids" });
    REQUIRE(reader.metadata().at("format") == "pt");
    REQUIRE(at::equal(reader.tensor("w"), at::tensor({ 1.5f, -2.0f, 0.25f, 1e-3f }).view({ 2, 2 })));
    REQUIRE(at::equal(reader.tensor("ids"), at::tensor({ int64_t(7), int64_t(-1), int64_t(1) << 40 }, at::kLong)));

    // What we write is laid out the same way: the header length is a multiple of 8.
    write_safetensors(dir.file("ours.safetensors"), { { "w", reader.tensor("w") } });
    const std::string bytes = read_bytes(dir.file("ours.safetensors"));
    REQUIRE((bytes.size() - 16 - 8) % 8 == 0);
    REQUIRE(bytes.substr(8, 1) == "{");
}

TEST_CASE("safetensors reads the checkpoints transformers wrote: every tensor the manifest lists", "[unit][safetensors]") {
    for (const Fixture & f : fixtures_or_skip("t5", "reading HF checkpoints")) {
        const SafetensorsReader reader(f.path(f.manifest["model_dir"].get<std::string>() + "/model.safetensors"));
        const auto &            names = f.manifest["checkpoint_tensor_names"];
        INFO(f.name);
        REQUIRE(reader.names().size() == names.size());
        for (const auto & name : reader.names()) {
            INFO(name);
            REQUIRE(names.contains(name));
            REQUIRE(reader.entry(name).shape == names[name].get<std::vector<int64_t>>());
            REQUIRE(reader.tensor(name).isfinite().all().item<bool>());
        }
    }
}

TEST_CASE("safetensors rejects malformed files with one line naming the file", "[unit][safetensors]") {
    TempDir           dir;
    const std::string p = dir.file("bad.safetensors");
    const std::string good_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

    SECTION("missing file") { require_error(dir.file("missing.safetensors"), "cannot open"); }
    SECTION("empty file") {
        write_bytes(p, "");
        require_error(p, "truncated");
    }
    SECTION("truncated inside the header length") {
        write_bytes(p, "abc");
        require_error(p, "truncated");
    }
    SECTION("absurd header length") {
        write_bytes(p, u64_le(1ull << 60) + "{}");
        require_error(p, "header length");
    }
    SECTION("header longer than the file") {
        write_bytes(p, u64_le(100) + "{}");
        require_error(p, "header length");
    }
    SECTION("header is not JSON") {
        write_bytes(p, file_with_header("{not json", 0));
        require_error(p, "not valid JSON");
    }
    SECTION("header is not an object") {
        write_bytes(p, file_with_header("[1,2]", 0));
        require_error(p, "not a JSON object");
    }
    SECTION("data truncated: offsets past the end") {
        write_bytes(p, file_with_header("{" + good_entry + "}", 4));
        require_error(p, "past the end");
    }
    SECTION("byte count disagrees with dtype x shape") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
        require_error(p, "needs 12");
    }
    SECTION("unknown dtype") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2));
        require_error(p, "unsupported dtype");
    }
    SECTION("duplicate names") {
        write_bytes(p, file_with_header("{" + good_entry + "," + R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16));
        require_error(p, "duplicate tensor name 'w'");
    }
    SECTION("overlapping tensors") {
        write_bytes(p, file_with_header("{" + good_entry + "," + R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
        require_error(p, "overlapping");
    }
    SECTION("gap between tensors") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
        require_error(p, "non-contiguous");
    }
    SECTION("trailing bytes after the last tensor") {
        write_bytes(p, file_with_header("{" + good_entry + "}", 12));
        require_error(p, "trailing");
    }
    SECTION("negative shape") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8));
        require_error(p, "non-negative");
    }
    SECTION("offsets end before begin") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8));
        require_error(p, "end before begin");
    }
    SECTION("shape overflows") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8));
        require_error(p, "too large");
    }
    SECTION("missing field") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[2]}})", 8));
        require_error(p, "no 'data_offsets'");
    }
    SECTION("metadata values must be strings") {
        write_bytes(p, file_with_header(R"({"__metadata__":{"a":1}})", 0));
        require_error(p, "__metadata__");
    }
}

TEST_CASE("safetensors writer refuses duplicate names and leaves no file behind", "[unit][safetensors]") {
    TempDir dir;
    REQUIRE_THROWS_AS(write_safetensors(dir.file("d.safetensors"), { { "a", at::ones({ 1 }) }, { "a", at::ones({ 1 }) } }),
                      Error);
    REQUIRE(!std::filesystem::exists(dir.file("d.safetensors")));
}

TEST_CASE("safetensors refuses a header or tensor larger than the file before allocating it", "[unit][safetensors]") {
    TempDir           dir;
    const std::string p = dir.file("big.safetensors");
    SECTION("header length one byte past the end of the file") {
        const std::string header = R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
        write_bytes(p, u64_le(header.size() + 1) + header);
        require_error(p, "header length " + std::to_string(header.size() + 1) + " is larger than the file");
    }
    SECTION("a terabyte tensor whose offsets agree with its shape, in a file of a few bytes") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}})", 8));
        require_error(p, "data_offsets end 1099511627776 is past the end of the data (8 bytes)");
    }
    SECTION("a shape whose byte count overflows 64 bits") {
        write_bytes(p, file_with_header(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0));
        require_error(p, "too large");
    }
}
