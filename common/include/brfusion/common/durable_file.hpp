#pragma once
// Crash-safe state files: each daemon keeps its desired state in one small JSON file that a crash
// leaves either old or new, never torn.

#include <optional>
#include <string>

namespace brfusion {

// Replaces `path` with `text`: writes PATH.tmp, fsyncs it, renames it over `path`, fsyncs the
// directory (creating it first). Throws std::runtime_error naming the path and the OS error,
// including when the directory cannot be fsynced (then the new text may not survive a crash).
void replace_file_durably(const std::string& path, const std::string& text);

// The contents of `path`, or nullopt when it does not exist. Throws std::runtime_error naming the
// path when it exists but cannot be read.
std::optional<std::string> read_file_if_exists(const std::string& path);

}  // namespace brfusion
