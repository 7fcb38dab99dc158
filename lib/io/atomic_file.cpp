#include "io/atomic_file.h"

#include "core/error.h"
#include "core/stop_point.h"
#include "io/run_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <streambuf>
#include <vector>

namespace fs = std::filesystem;

namespace cgm {

std::string temporary_name(const std::string & path) {
    static std::atomic<int> counter{ 0 };
    return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

size_t temporary_suffix(const std::string & name) {
    const size_t at     = name.rfind(".tmp-");
    const size_t dash   = at == std::string::npos ? at : name.find('-', at + 5);
    const auto   digits = [&](size_t from, size_t to) {
        return to > from && name.find_first_not_of("0123456789", from) >= to;
    };
    return dash != std::string::npos && digits(at + 5, dash) && digits(dash + 1, name.size()) ? at : std::string::npos;
}

namespace {

// An output buffer over a file descriptor that keeps the first write error (errno): a full disk
// or a file-size limit is reported as what it is.
class FileSink : public std::streambuf {
  public:
    explicit FileSink(int fd) : fd_(fd), buffer_(1 << 16) { reset(); }
    int error() const { return error_; }

  protected:
    int_type overflow(int_type c) override {
        if (!drain()) {
            return traits_type::eof();
        }
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char * data, std::streamsize n) override {
        if (n <= 0) {  // an empty tensor's data pointer may be null, which memcpy may not be given
            return 0;
        }
        if (n < epptr() - pptr()) {  // small pieces gather in the buffer
            std::memcpy(pptr(), data, static_cast<size_t>(n));
            pbump(static_cast<int>(n));
            return n;
        }
        return drain() && write_all(data, static_cast<size_t>(n)) ? n : 0;  // tensors go straight out
    }
    int sync() override { return drain() ? 0 : -1; }

  private:
    bool write_all(const char * data, size_t n) {
        while (n > 0 && error_ == 0) {
            const ssize_t written = ::write(fd_, data, n);
            if (written < 0 && errno != EINTR) {
                error_ = errno;
            } else if (written == 0) {  // no progress and no error: give up rather than spin
                error_ = EIO;
            } else if (written > 0) {
                data += written;
                n -= static_cast<size_t>(written);
            }
        }
        return error_ == 0;
    }
    bool drain() {
        const bool ok = write_all(pbase(), static_cast<size_t>(pptr() - pbase()));
        reset();
        return ok;
    }
    void reset() { setp(buffer_.data(), buffer_.data() + buffer_.size()); }

    int               fd_;
    int               error_ = 0;
    std::vector<char> buffer_;  // on the heap: writers may run on threads with small stacks
};

// `path` as the user will find it: inside a StagedDirectory the folder's final name, not the
// temporary one it is filled under ("out.tmp-12-0/train.jsonl" -> "out/train.jsonl").
std::string final_name(const std::string & path) {
    const fs::path whole(path);
    fs::path       out;
    for (const auto & part : whole.parent_path()) {
        const std::string name = part.string();
        out /= name.substr(0, temporary_suffix(name));
    }
    return (out / whole.filename()).string();
}

// The rename into a folder lasts across a power cut only once the folder itself is synced.
void sync_folder(const fs::path & file) {
    const fs::path folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
    const int      fd     = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

}  // namespace

void write_file_atomic(const std::string & path, const std::function<void(std::ostream &)> & write) {
    const std::string tmp = temporary_name(path);
    int               fd  = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        const int error = errno;
        fail(final_name(path), std::string("cannot create: ") + std::strerror(error));
    }
    const auto close_once = [&fd] {
        const int status = ::close(fd);
        fd               = -1;
        return status == 0 ? 0 : errno;
    };
    try {
        FileSink     sink(fd);
        std::ostream out(&sink);
        write(out);
        out.flush();
        // fsync before the rename: the new name never points at data still only in memory (and a
        // full disk may only show here).
        int error = sink.error() != 0 ? sink.error() : (::fsync(fd) != 0 ? errno : 0);
        error     = error != 0 ? error : close_once();
        if (error != 0 || !out) {
            fail(final_name(path), std::string("cannot write: ") + (error != 0 ? std::strerror(error) : "the stream failed"));
        }
        stop_point("write", path);
        std::error_code ec;
        fs::rename(tmp, path, ec);
        if (ec) {
            fail(final_name(path), "cannot rename the temporary file into place: " + ec.message());
        }
        sync_folder(path);
    } catch (...) {
        if (fd >= 0) {
            close_once();
        }
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
    staging_path_ = temporary_name(final_path_);
    fs::create_directory(staging_path_, ec);
    if (ec) {
        fail(final_path_, "cannot create directory: " + ec.message());
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
    const std::string old = temporary_name(final_path_);
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
