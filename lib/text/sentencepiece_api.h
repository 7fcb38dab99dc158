#pragma once
// The interface between the library and the sentencepiece module.
//
// Debian's libsentencepiece carries its own copy of protobuf-lite and exports those symbols;
// linked into a process that also loads libprotobuf (LibTorch does), the two copies bind to each
// other at start-up and the process crashes before main(). So sentencepiece lives in a module
// of its own that is opened with RTLD_LOCAL | RTLD_DEEPBIND, which keeps each copy to itself.
#include <string>
#include <vector>

namespace cgm {

struct SentencePieceApi {
    void * (*load)(const char * model_path, std::string * error);  // null on error
    void (*release)(void * processor);
    int (*piece_size)(const void * processor);
    bool (*encode)(const void * processor, const std::string & text, std::vector<int> * ids, std::string * error);
    bool (*decode)(const void * processor, const std::vector<int> & ids, std::string * text, std::string * error);
    std::string (*id_to_piece)(const void * processor, int id);
};

}  // namespace cgm

extern "C" const cgm::SentencePieceApi * cgm_sentencepiece_api();
