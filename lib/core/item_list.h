#pragma once
// Lists of names inside one-line error messages: a checkpoint can have dozens of mis-shaped
// tensors, and a line naming all of them is unreadable.
#include <cstddef>
#include <string>
#include <vector>

namespace cgm {

// "45 with wrong shape (a, b, c and 42 more (--log-level debug lists all))"; every item when there
// are at most `shown`. A list that is cut is logged whole at debug level.
std::string summarize_items(const std::vector<std::string> & items, const std::string & what, std::size_t shown = 3);

}  // namespace cgm
