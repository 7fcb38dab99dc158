#pragma once
// Writes that never leave a half-written result: content goes to a temporary name beside the
// target and is renamed into place only when complete.
#include <functional>
#include <ostream>
#include <string>

namespace cgm {

// `path` with the suffix ".tmp-<pid>-<n>" (this process, a counter) that marks a file or folder
// being written.
std::string temporary_name(const std::string & path);
// Where that suffix starts in `name` (std::string::npos: it has none).
size_t temporary_suffix(const std::string & name);

// Calls write(stream) on a temporary file next to `path`, then renames it to `path`.
// On any failure the temporary file is removed, `path` is untouched, and an Error is thrown.
void write_file_atomic(const std::string & path, const std::function<void(std::ostream &)> & write);

void write_text_atomic(const std::string & path, const std::string & text);

// A directory filled under a temporary sibling name and moved to its final path by commit(). The
// final directory must be one this run may write (claim_output_folder in io/run_record.h: not
// another kind of output, another run's settings or an input, unless --overwrite); commit() puts
// this run's run.json in. Destroyed without commit(), it removes everything written.
class StagedDirectory {
  public:
    explicit StagedDirectory(std::string final_path);
    ~StagedDirectory();
    StagedDirectory(const StagedDirectory &)             = delete;
    StagedDirectory & operator=(const StagedDirectory &) = delete;

    // Where to write the contents until commit().
    const std::string & path() const { return staging_path_; }
    void commit();

  private:
    std::string final_path_;
    std::string staging_path_;
    bool        committed_ = false;
};

}  // namespace cgm
