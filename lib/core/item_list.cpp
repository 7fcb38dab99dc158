#include "core/item_list.h"

#include <spdlog/spdlog.h>

namespace cgm {
namespace {

std::string joined(std::vector<std::string>::const_iterator begin, std::vector<std::string>::const_iterator end) {
    std::string out;
    for (auto it = begin; it != end; ++it) {
        out += (it == begin ? "" : ", ") + *it;
    }
    return out;
}

}  // namespace

std::string summarize_items(const std::vector<std::string> & items, const std::string & what, std::size_t shown) {
    const std::string count = std::to_string(items.size()) + " " + what;
    if (items.size() <= shown) {
        return count + " (" + joined(items.begin(), items.end()) + ")";
    }
    spdlog::debug("{}: {}", count, joined(items.begin(), items.end()));
    return count + " (" + joined(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(shown)) + " and " +
           std::to_string(items.size() - shown) + " more (--log-level debug lists all))";
}

}  // namespace cgm
