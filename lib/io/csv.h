#pragma once
// CSV (RFC 4180): fields with commas, quotes or newlines are quoted, quotes doubled.
#include <string>
#include <vector>

namespace cgm {

using CsvRow = std::vector<std::string>;

std::string csv_line(const CsvRow & fields);

// Header and rows, atomically.
void write_csv(const std::string & path, const CsvRow & header, const std::vector<CsvRow> & rows);

// Parses a whole CSV file (quoted fields may hold commas and newlines); an Error names the line.
std::vector<CsvRow> read_csv(const std::string & path);

}  // namespace cgm
