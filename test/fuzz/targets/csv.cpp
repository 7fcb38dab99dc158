// A CSV file (predictions), read and written back as lines.
#include "fuzz/fuzz_target.h"
#include "io/csv.h"

CGM_FUZZ_TARGET(csv) {
    for (const cgm::CsvRow & row : cgm::read_csv(cgm::fuzz::write_input("predictions.csv", data, size))) {
        (void)cgm::csv_line(row);
    }
}
