#pragma once
// Hugging Face's slow T5Tokenizer (legacy mode, what hub T5 checkpoints get): sentencepiece with
// EOS appended, pad 0, and <extra_id_N> sentinels at the top of the vocabulary.
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace cgm {

class SentencePiece;

struct TokenBatch {
    at::Tensor input_ids;       // [N, T] int64, right padded with pad
    at::Tensor attention_mask;  // [N, T] int64, 1 = token
};

class T5Tokenizer {
  public:
    // Reads DIR/spiece.model and, if present, DIR/tokenizer_config.json (extra_ids, clean-up).
    explicit T5Tokenizer(const std::string & dir);
    ~T5Tokenizer();
    T5Tokenizer(T5Tokenizer &&) noexcept;

    // Token ids with EOS appended (unless the text already ends in a literal "</s>").
    std::vector<int64_t> encode(const std::string & text) const;
    // Several texts, truncated to max_length (keeping EOS last), padded to the longest row or,
    // with pad_to_max_length, to max_length. max_length <= 0: no truncation.
    TokenBatch encode_batch(const std::vector<std::string> & texts, int64_t max_length,
                            bool pad_to_max_length = false) const;
    // decode(ids, skip_special_tokens=True) with HF's tokenization-space clean-up.
    std::string decode(const std::vector<int64_t> & ids) const;
    // One piece per id ("▁The", "</s>", "<extra_id_0>"), as convert_ids_to_tokens.
    std::vector<std::string> pieces(const std::vector<int64_t> & ids) const;

    int64_t size() const;  // sentencepiece pieces + sentinels
    int64_t pad_id() const { return 0; }
    int64_t eos_id() const { return 1; }
    int64_t unk_id() const { return 2; }
    int64_t sentinel_id(int64_t i) const;  // <extra_id_i>

  private:
    std::vector<int64_t> encode_without_eos(const std::string & text) const;
    bool                 is_special(int64_t id) const;

    std::unique_ptr<SentencePiece> sp_;
    int64_t                        sp_size_         = 0;
    int64_t                        extra_ids_       = 100;
    bool                           clean_up_spaces_ = true;
};

}  // namespace cgm
