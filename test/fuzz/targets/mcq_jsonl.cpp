// The project's MCQ jsonl, by the strict reader and by the lenient one (strict and not).
#include "fuzz/fuzz_target.h"
#include "text/dataset_readers.h"
#include "text/mcq.h"

CGM_FUZZ_TARGET(mcq_jsonl) {
    const std::string path = cgm::fuzz::write_input("train.jsonl", data, size);
    try {
        for (const cgm::McqRecord & r : cgm::read_mcq_jsonl(path)) {
            (void)cgm::mcq_to_json_line(r);
        }
    } catch (const cgm::Error &) {
        // The other readers still run on the same input.
    }
    try {
        (void)cgm::read_mcq_records(path, { "", true, false });
    } catch (const cgm::Error &) {
    }
    for (const cgm::McqRecord & r : cgm::read_mcq_records(path, {}).records) {
        (void)cgm::mcq_to_json_line(r);
        if (r.label >= 0) {
            (void)r.answer();
        }
    }
}
