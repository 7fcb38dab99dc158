#pragma once
// A fuzz target is a plain function over bytes, so that libFuzzer (one executable per target, see
// CMakeLists.txt) and the test suite (replaying saved inputs by name) run the same body.
// CGM_FUZZ_TARGET(name) { ... } defines it; with CGM_FUZZ_ENTRY_POINT defined it also becomes the
// executable's LLVMFuzzerTestOneInput. A cgm::Error is the expected answer to bad input and is
// swallowed; any other exception escapes (libFuzzer reports it as a crash, a test fails).
#include "core/error.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace cgm::fuzz {

using TargetBody = void (*)(const uint8_t * data, size_t size);

// Every target linked into this program, by name.
std::map<std::string, TargetBody> & registry();
bool                                register_target(const char * name, TargetBody body);

// Runs `body`, swallowing cgm::Error only.
void run_target(TargetBody body, const uint8_t * data, size_t size);

// The bytes written to `name` in this process's scratch folder (under the temp folder, removed at
// exit); returns its path. Readers that take a path read the fuzz input from there.
std::string write_input(const std::string & name, const uint8_t * data, size_t size);
// This process's scratch folder, created on first use.
const std::string & scratch_dir();

}  // namespace cgm::fuzz

#ifdef CGM_FUZZ_ENTRY_POINT
#define CGM_FUZZ_ENTRY(name)                                                   \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) { \
        ::cgm::fuzz::run_target(cgm_fuzz_body_##name, data, size);             \
        return 0;                                                              \
    }
#else
#define CGM_FUZZ_ENTRY(name)
#endif

#define CGM_FUZZ_TARGET(name)                                                                       \
    static void cgm_fuzz_body_##name(const uint8_t * data, size_t size);                            \
    [[maybe_unused]] static const bool cgm_fuzz_registered_##name =                                 \
        ::cgm::fuzz::register_target(#name, cgm_fuzz_body_##name);                                  \
    CGM_FUZZ_ENTRY(name)                                                                            \
    static void cgm_fuzz_body_##name(const uint8_t * data, size_t size)
