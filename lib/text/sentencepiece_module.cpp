// The sentencepiece module (see sentencepiece_api.h for why it is separate).
#include "text/sentencepiece_api.h"

#include <sentencepiece_processor.h>

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

void * load(const char * model_path, std::string * error) {
    auto *     sp     = new Processor();
    const auto status = sp->Load(model_path);
    if (!status.ok()) {
        *error = status.ToString();
        delete sp;
        return nullptr;
    }
    return sp;
}

void release(void * processor) {
    delete static_cast<Processor *>(processor);
}

int piece_size(const void * processor) {
    return static_cast<const Processor *>(processor)->GetPieceSize();
}

bool encode(const void * processor, const std::string & text, std::vector<int> * ids, std::string * error) {
    const auto status = static_cast<const Processor *>(processor)->Encode(text, ids);
    if (!status.ok()) {
        *error = status.ToString();
    }
    return status.ok();
}

bool decode(const void * processor, const std::vector<int> & ids, std::string * text, std::string * error) {
    const auto status = static_cast<const Processor *>(processor)->Decode(ids, text);
    if (!status.ok()) {
        *error = status.ToString();
    }
    return status.ok();
}

std::string id_to_piece(const void * processor, int id) {
    return static_cast<const Processor *>(processor)->IdToPiece(id);
}

}  // namespace

extern "C" const cgm::SentencePieceApi * cgm_sentencepiece_api() {
    static const cgm::SentencePieceApi api = { load, release, piece_size, encode, decode, id_to_piece };
    return &api;
}
