#include "io/atomic_file.h"

#include "core/error.h"
#include "io/run_record.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

std::string unique_suffix() {
    static int counter = 0;
    return ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

void write_file_atomic(const std::string & path, const std::function<void(std::ostream &)> & write) {
    const std::string tmp = path + unique_suffix();
    try {
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            if (!out) {
                fail(path, "cannot open for writing");
            }
            write(out);
            out.flush();
            if (!out) {
                fail(path, "write failed (disk full?)");
            }
        }
        std::error_code ec;
        fs::rename(tmp, path, ec);
        if (ec) {
            fail(path, "cannot rename temporary file into place: " + ec.message());
        }
    } catch (...) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
    }
}

void write_text_atomic(const std::string & path, const std::string & text) {
    write_file_atomic(path, [&](std::ostream & out) { out << text; });
}

StagedDirectory::StagedDirectory(std::string final_path) : final_path_(std::move(final_path)) {
    while (!final_path_.empty() && final_path_.size() > 1 && final_path_.back() == '/') {
        final_path_.pop_back();
    }
    claim_output_folder(final_path_, current_run() ? *current_run() : library_run());
    std::error_code ec;
    const fs::path parent = fs::path(final_path_).parent_path();
    if (!parent.empty()) {
        fs::create_directories(parent, ec);
        if (ec) {
            fail(parent.string(), "cannot create directory: " + ec.message());
        }
    }
    staging_path_ = final_path_ + unique_suffix();
    fs::create_directory(staging_path_, ec);
    if (ec) {
        fail(staging_path_, "cannot create directory: " + ec.message());
    }
}

StagedDirectory::~StagedDirectory() {
    if (!committed_) {
        std::error_code ignored;
        fs::remove_all(staging_path_, ignored);
    }
}

void StagedDirectory::commit() {
    if (const RunRecord * run = current_run()) {
        RunRecord finished = *run;
        finished.finished  = utc_now();
        write_run_record(staging_path_, finished);
    }
    std::error_code ec;
    const std::string old = final_path_ + unique_suffix();
    const bool had_old = fs::exists(final_path_, ec);
    if (had_old) {
        fs::rename(final_path_, old, ec);
        if (ec) {
            fail(final_path_, "cannot move the previous output aside: " + ec.message());
        }
    }
    fs::rename(staging_path_, final_path_, ec);
    if (ec) {
        if (had_old) {
            std::error_code ignored;
            fs::rename(old, final_path_, ignored);
        }
        fail(final_path_, "cannot move the new output into place: " + ec.message());
    }
    committed_ = true;
    if (had_old) {
        fs::remove_all(old, ec);
    }
}

}  // namespace cgm
