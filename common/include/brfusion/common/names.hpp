#pragma once
// The names users give brfusion's objects (host networks, VMs, Hostlo groups): 1-64 characters
// of [A-Za-z0-9._-], safe in OVS labels, file names and messages.

#include <cctype>
#include <string>

namespace brfusion {

inline bool is_valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

}  // namespace brfusion
