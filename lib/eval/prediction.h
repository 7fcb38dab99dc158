#pragma once
// One answer of a model to one example, whatever the modality: what evaluate writes to
// predictions.csv and reports computes metrics from.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace cgm {

struct Prediction {
    std::string id;
    std::string domain;
    std::string target;     // gold answer: text, or a class name ("" when unlabeled)
    std::string predicted;  // answer text or class name
    bool        correct = false;
    // Ranked scoring only: each choice's mean log-likelihood per target token, in choice order
    // (predicted is the first choice with the highest); empty for the other scorings. (`= {}`
    // keeps the five-field initialisations of the other predictions free of warnings.)
    std::vector<double> choice_scores = {};
};

// One evaluation batch's loss: its mean over the batch's terms (target tokens, images).
struct BatchLoss {
    double mean  = 0;
    double terms = 0;
};

struct PredictResult {
    std::vector<Prediction> predictions;
    std::vector<BatchLoss>  batches;      // in order, those with a labeled example; loss and batch_mean_loss total them
    double                  loss    = 0;  // mean loss over labeled examples (their target tokens)
    // The plain mean of each batch's mean loss, over batches with a labeled example: the seed's
    // evaluation figure (batches of 8 in record order, with --eval-batch-size 8).
    double                  batch_mean_loss = 0;
    double                  seconds = 0;  // the scoring pass alone (not the pass for the loss and gate log)
};

// The end of the evaluation batch that starts at example `start` of `n`: at most `batch_size`
// examples and never past a change of domain, so each dataset is scored in batches of its own, as
// the seed scores each dataset apart (a `--mix seed` gate averages over its batch).
template <class DomainOf> size_t batch_end(size_t start, size_t n, size_t batch_size, DomainOf && domain_of) {
    const size_t end = std::min(n, start + batch_size);
    for (size_t i = start + 1; i < end; ++i) {
        if (domain_of(i) != domain_of(start)) {
            return i;
        }
    }
    return end;
}

}  // namespace cgm
