#include "support/op_counter.h"

#include <memory>

namespace cgm::test {
namespace {

// RecordFunction takes plain function pointers: the counted name and the count live here, one
// counter per thread at a time.
thread_local std::string g_name;
thread_local int64_t     g_count = 0;

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction & fn) {
    if (g_name == fn.name()) {
        ++g_count;
    }
    return nullptr;
}

}  // namespace

OpCounter::OpCounter(std::string name) {
    g_name  = std::move(name);
    g_count = 0;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(on_start).scopes({ at::RecordScope::FUNCTION }));
}

OpCounter::~OpCounter() {
    at::removeCallback(handle_);
    g_name.clear();
}

int64_t OpCounter::count() const {
    return g_count;
}

}  // namespace cgm::test
