#include "brfusion/common/command_line.hpp"

#include <fstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace brfusion {

using nlohmann::json;

json config_from_arguments(int argc, char** argv, const std::map<std::string, std::string>& scalar_flags,
                           const std::map<std::string, std::string>& list_flags, const std::set<std::string>& numeric_keys, const std::set<std::string>& boolean_keys) {
    std::vector<std::pair<std::string, std::string>> flags;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
        flags.emplace_back(flag, argv[++i]);
    }
    json config = json::object();
    for (const auto& [flag, path] : flags) {
        if (flag != "--config") continue;
        std::ifstream file(path);
        if (!file) throw std::invalid_argument("cannot read the config file " + path);
        config = json::parse(file, nullptr, false);
        if (config.is_discarded()) throw std::invalid_argument("the config file " + path + " is not valid JSON");
    }
    for (const auto& [flag, value] : flags) {
        if (flag == "--config") continue;
        if (const auto key = scalar_flags.find(flag); key != scalar_flags.end()) {
            if (boolean_keys.contains(key->second)) {
                if (value != "true" && value != "false") throw std::invalid_argument(flag + " takes true or false, got: " + value);
                config[key->second] = value == "true";
                continue;
            }
            if (!numeric_keys.contains(key->second)) {
                config[key->second] = value;
                continue;
            }
            const json number = json::parse(value, nullptr, false);
            if (!number.is_number()) throw std::invalid_argument(flag + " takes a number, got: " + value);
            config[key->second] = number;
        } else if (const auto list = list_flags.find(flag); list != list_flags.end()) {
            json item = json::parse(value, nullptr, false);
            if (item.is_discarded()) throw std::invalid_argument(flag + " takes a JSON object, got: " + value);
            config[list->second].push_back(item);
        } else {
            throw std::invalid_argument("unknown option " + flag + " (see --help)");
        }
    }
    return config;
}

}  // namespace brfusion
