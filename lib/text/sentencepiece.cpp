#include "text/sentencepiece.h"

#include "core/error.h"
#include "text/sentencepiece_api.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {
namespace {

// AddressSanitizer's dlopen refuses RTLD_DEEPBIND: a deep-bound library could bind malloc to
// libc's instead of the sanitizer's. The module is built with the sanitizer, libasan first among
// its needed libraries, so deep binding still finds the sanitizer's malloc; glibc's own dlopen is
// called past the check.
void * open_module(const std::string & path) {
    constexpr int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#if defined(__SANITIZE_ADDRESS__)
    static const auto libc_dlopen = [] {
        void * libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        return reinterpret_cast<void * (*) (const char *, int)>(libc != nullptr ? ::dlsym(libc, "dlopen") : nullptr);
    }();
    if (libc_dlopen != nullptr) {
        return libc_dlopen(path.c_str(), flags);
    }
#endif
    return ::dlopen(path.c_str(), flags);
}

// The module sits next to the executable; the build tree's copy is the fallback.
const SentencePieceApi * module_api() {
    static const SentencePieceApi * api = [] {
        std::vector<std::string> candidates;
        std::error_code          ec;
        const fs::path           exe = fs::read_symlink("/proc/self/exe", ec);
        if (!ec) {
            candidates.push_back((exe.parent_path() / CGM_SENTENCEPIECE_MODULE_NAME).string());
        }
        candidates.push_back(CGM_SENTENCEPIECE_MODULE_PATH);
        std::string errors;
        for (const auto & path : candidates) {
            void * handle = open_module(path);
            if (handle == nullptr) {
                errors += std::string(" ") + ::dlerror() + ";";
                continue;
            }
            using Entry = const SentencePieceApi * (*) ();
            auto entry  = reinterpret_cast<Entry>(::dlsym(handle, "cgm_sentencepiece_api"));
            if (entry != nullptr) {
                return entry();
            }
        }
        throw Error("cannot load the sentencepiece module:" + errors);
    }();
    return api;
}

}  // namespace

SentencePiece::SentencePiece(const std::string & model_path) : path_(model_path), api_(module_api()) {
    std::string error;
    processor_ = api_->load(model_path.c_str(), &error);
    if (processor_ == nullptr) {
        fail(model_path, "not a valid sentencepiece model: " + error);
    }
}

SentencePiece::~SentencePiece() {
    api_->release(processor_);
}

int SentencePiece::size() const {
    return api_->piece_size(processor_);
}

std::vector<int> SentencePiece::encode(const std::string & text) const {
    std::vector<int> ids;
    std::string      error;
    if (!api_->encode(processor_, text, &ids, &error)) {
        fail(path_, "sentencepiece cannot encode text: " + error);
    }
    return ids;
}

std::string SentencePiece::decode(const std::vector<int> & ids) const {
    std::string text, error;
    if (!api_->decode(processor_, ids, &text, &error)) {
        fail(path_, "sentencepiece cannot decode ids: " + error);
    }
    return text;
}

std::string SentencePiece::id_to_piece(int id) const {
    return api_->id_to_piece(processor_, id);
}

}  // namespace cgm
