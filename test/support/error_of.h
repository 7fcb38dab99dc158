#pragma once
// The message of the cgm::Error a call throws; any other outcome fails the calling test.
#include <functional>
#include <string>

namespace cgm::test {

std::string error_of(const std::function<void()> & f);

}  // namespace cgm::test
