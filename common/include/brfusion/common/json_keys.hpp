#pragma once
// Strict JSON objects: find a key a message type does not have, so that a typo is refused rather
// than ignored, and integers that do not fit. Each caller words the error for its own user
// (config path, request field).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>

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

// True when `value` is a JSON integer that T holds. Check before value.get<T>(): nlohmann converts
// a float (9e124: undefined behaviour) or wraps an integer too large (4294967376 to 80) without a
// word.
template <typename T>
bool fits_integer(const nlohmann::json& value) {
    if (value.is_number_unsigned()) return value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    return value.is_number_integer() && std::in_range<T>(value.get<std::int64_t>());
}

}  // namespace brfusion
