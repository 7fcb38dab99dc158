#include "support/error_of.h"

#include "core/error.h"

#include <catch2/catch.hpp>

namespace cgm::test {

std::string error_of(const std::function<void()> & f) {
    try {
        f();
    } catch (const Error & e) {
        return e.what();
    }
    FAIL("no cgm::Error was thrown");
    return {};
}

}  // namespace cgm::test
