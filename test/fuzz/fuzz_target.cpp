#include "fuzz/fuzz_target.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace cgm::fuzz {
namespace {

// The scratch folder, removed when the process exits normally.
struct Scratch {
    std::string path = (fs::temp_directory_path() / ("cgm-fuzz-" + std::to_string(::getpid()))).string();
    Scratch() { fs::create_directories(path); }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

std::map<std::string, TargetBody> & registry() {
    static std::map<std::string, TargetBody> targets;
    return targets;
}

bool register_target(const char * name, TargetBody body) {
    return registry().emplace(name, body).second;
}

void run_target(TargetBody body, const uint8_t * data, size_t size) {
    try {
        body(data, size);
    } catch (const Error &) {
        // The expected answer to bad input.
    }
}

const std::string & scratch_dir() {
    static const Scratch scratch;
    return scratch.path;
}

std::string write_input(const std::string & name, const uint8_t * data, size_t size) {
    const std::string path = scratch_dir() + "/" + name;
    std::ofstream     out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
    if (!out.flush()) {
        throw std::runtime_error(path + ": cannot write the fuzz input");
    }
    return path;
}

}  // namespace cgm::fuzz
