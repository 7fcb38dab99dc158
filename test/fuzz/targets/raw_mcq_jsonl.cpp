// The raw datasets' jsonl: CommonsenseQA and MedQA, each strict and lenient.
#include "fuzz/fuzz_target.h"
#include "text/dataset_readers.h"

CGM_FUZZ_TARGET(raw_mcq_jsonl) {
    const std::string path = cgm::fuzz::write_input("dev.jsonl", data, size);
    for (const auto read : { &cgm::read_commonsenseqa, &cgm::read_medqa }) {
        for (const bool strict : { false, true }) {
            try {
                for (const cgm::McqRecord & r : read(path, { "", strict, false }).records) {
                    if (r.label >= 0) {
                        if (r.label >= 0) {
                            (void)r.answer();
                        }
                    }
                }
            } catch (const cgm::Error &) {
                // The next reader still runs on the same input.
            }
        }
    }
}
