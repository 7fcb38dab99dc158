#pragma once
// A sentencepiece model, reached through the isolated module (sentencepiece_api.h).
#include <string>
#include <vector>

namespace cgm {

struct SentencePieceApi;

class SentencePiece {
  public:
    explicit SentencePiece(const std::string & model_path);
    ~SentencePiece();
    SentencePiece(const SentencePiece &)             = delete;
    SentencePiece & operator=(const SentencePiece &) = delete;

    int              size() const;
    std::vector<int> encode(const std::string & text) const;
    std::string      decode(const std::vector<int> & ids) const;
    std::string      id_to_piece(int id) const;

  private:
    std::string              path_;
    const SentencePieceApi * api_       = nullptr;
    void *                   processor_ = nullptr;
};

}  // namespace cgm
