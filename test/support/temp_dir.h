#pragma once
// A fresh directory under the system temp folder, removed with everything in it.
#include <string>

namespace cgm::test {

class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &)             = delete;
    TempDir & operator=(const TempDir &) = delete;

    const std::string & path() const { return path_; }
    std::string         file(const std::string & name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// Writes bytes to a file (test inputs, including malformed ones).
void write_bytes(const std::string & path, const std::string & bytes);
std::string read_bytes(const std::string & path);

}  // namespace cgm::test
