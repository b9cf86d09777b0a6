#pragma once
// Strict JSON objects: find a key a message type does not have, so that a typo is refused rather
// than ignored. Each caller words the error for its own user (config path, request field).

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>

namespace brfusion {

// The first key of `object` that is not in `known`, or nullopt. `object` must be a JSON object.
inline std::optional<std::string> unknown_key(const nlohmann::json& object, std::initializer_list<const char*> known) {
    for (const auto& [key, value] : object.items()) {
        bool found = false;
        for (const char* name : known) found = found || key == name;
        if (!found) return key;
    }
    return std::nullopt;
}

}  // namespace brfusion
