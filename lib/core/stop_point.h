#pragma once
// Named moments where the kill tests stop a program from outside: with CGM_STOP_AT set to
// EVENT:N or EVENT:N:PART, the process stops itself (SIGSTOP) the N-th time it reaches EVENT (for
// "write": a file whose path contains PART), so that a test can send SIGKILL at exactly that
// moment. Unset (always, outside those tests), a stop point costs one comparison.
//   step   a micro-batch's gradients are computed, the optimizer has not stepped
//   eval   a validation pass is done, its best model not saved yet
//   write  a file's bytes are in its temporary file, not yet renamed into place
#include <string>

namespace cgm {

void stop_point(const char * event, const std::string & path = "");

}  // namespace cgm
