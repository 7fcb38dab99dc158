// ScienceQA's problems.json; bytes after the first NUL, when there is one, become the
// pid_splits.json beside it.
#include "fuzz/fuzz_target.h"
#include "text/dataset_readers.h"

#include <algorithm>
#include <cstdio>

CGM_FUZZ_TARGET(scienceqa_json) {
    const uint8_t *   nul    = std::find(data, data + size, uint8_t{ 0 });
    const std::string splits = cgm::fuzz::scratch_dir() + "/pid_splits.json";
    if (nul != data + size) {
        cgm::fuzz::write_input("pid_splits.json", nul + 1, static_cast<size_t>(data + size - nul - 1));
    } else {
        std::remove(splits.c_str());
    }
    const std::string path = cgm::fuzz::write_input("problems.json", data, static_cast<size_t>(nul - data));
    for (const bool include_images : { false, true }) {
        for (const bool strict : { false, true }) {
            try {
                for (const cgm::ReadResult & split : cgm::read_scienceqa(path, { "", strict, include_images })) {
                    for (const cgm::McqRecord & r : split.records) {
                        if (r.label >= 0) {
                        if (r.label >= 0) {
                            (void)r.answer();
                        }
                    }
                    }
                }
            } catch (const cgm::Error &) {
                // The next setting still runs on the same input.
            }
        }
    }
}
