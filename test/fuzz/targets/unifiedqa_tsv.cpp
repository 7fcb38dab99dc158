// UnifiedQA's tsv, strict and lenient.
#include "fuzz/fuzz_target.h"
#include "text/dataset_readers.h"

CGM_FUZZ_TARGET(unifiedqa_tsv) {
    const std::string path = cgm::fuzz::write_input("test.tsv", data, size);
    try {
        (void)cgm::read_unifiedqa(path, { "", true, false });
    } catch (const cgm::Error &) {
        // The lenient reader still runs on the same input.
    }
    for (const cgm::McqRecord & r : cgm::read_unifiedqa(path, {}).records) {
        (void)r.answer();
    }
}
