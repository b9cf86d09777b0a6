#include "brfusion/common/durable_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace brfusion {

namespace {

[[noreturn]] void io_failure(const std::string& what, const std::string& path) {
    throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void write_and_sync(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) io_failure("cannot create", path);
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            io_failure("cannot write", path);
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        io_failure("cannot fsync", path);
    }
    ::close(fd);
}

}  // namespace

void replace_file_durably(const std::string& path, const std::string& text) {
    const std::string directory = std::filesystem::path(path).parent_path().string();
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) throw std::runtime_error("cannot create the directory " + directory + ": " + ec.message());
    const std::string temporary = path + ".tmp";
    write_and_sync(temporary, text);
    if (::rename(temporary.c_str(), path.c_str()) != 0) io_failure("cannot replace", path);
    // The rename is durable only once the directory entry is: a state file the caller believes
    // saved must not come back old after a power cut.
    const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) io_failure("cannot open the directory", directory);
    if (::fsync(dir) != 0) {
        const int error = errno;
        ::close(dir);
        errno = error;
        io_failure("cannot fsync the directory", directory);
    }
    ::close(dir);
}

std::optional<std::string> read_file_if_exists(const std::string& path) {
    std::ifstream file(path);
    if (!file) {
        if (!std::filesystem::exists(path)) return std::nullopt;
        io_failure("cannot read", path);
    }
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

}  // namespace brfusion
