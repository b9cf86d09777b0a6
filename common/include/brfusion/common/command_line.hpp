#pragma once
// Every daemon takes `--config FILE` (JSON) and every config key as a flag too; flags override the
// file. One parser for all of them.

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>

namespace brfusion {

// Reads `--config FILE` first, then applies every other flag on top: a flag of `scalar_flags`
// (flag -> key) sets the key to its value (a string; a number when `numeric_keys` has the key;
// true or false when `boolean_keys` has it); a flag of `list_flags` (flag -> key) appends its
// value, parsed as JSON, to the key's list. Throws std::invalid_argument naming the flag or the file.
nlohmann::json config_from_arguments(int argc, char** argv, const std::map<std::string, std::string>& scalar_flags,
                                     const std::map<std::string, std::string>& list_flags = {},
                                     const std::set<std::string>& numeric_keys = {}, const std::set<std::string>& boolean_keys = {});

}  // namespace brfusion
