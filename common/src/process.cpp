#include "brfusion/common/process.hpp"

#include <array>
#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace brfusion {

namespace {

// The child's stdin: `input` in an anonymous memory file, so that no writer has to race the
// child's output for pipe space.
int stdin_holding(const std::string& input) {
    const int fd = ::memfd_create("brfusion-stdin", MFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
    for (std::size_t written = 0; written < input.size();) {
        const ssize_t n = ::write(fd, input.data() + written, input.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int error = errno;
            ::close(fd);
            throw std::system_error(error, std::generic_category(), "writing a child's stdin");
        }
        written += static_cast<std::size_t>(n);
    }
    ::lseek(fd, 0, SEEK_SET);
    return fd;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input) {
    const int stdin_fd = stdin_holding(input);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        const int error = errno;
        ::close(stdin_fd);
        throw std::system_error(error, std::generic_category(), "pipe");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    ::close(stdin_fd);
    if (spawned != 0) {
        ::close(pipe_fds[0]);
        throw std::system_error(spawned, std::generic_category(), "cannot run " + argv.at(0));
    }
    ProcessResult result;
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t n = ::read(pipe_fds[0], buffer.data(), buffer.size());
        if (n > 0) result.output.append(buffer.data(), static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR) break;
    }
    ::close(pipe_fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

}  // namespace brfusion
