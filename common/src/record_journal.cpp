#include "brfusion/common/record_journal.hpp"

#include "brfusion/common/durable_file.hpp"

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace brfusion {

using nlohmann::json;

namespace {

void append_all(int fd, const std::string& text) {
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category());
        written += static_cast<std::size_t>(n);
    }
}

json line_of(const std::vector<RecordChange>& changes) {
    json line = json::array();
    for (const auto& change : changes) line.push_back(json::array({change.section, change.key, change.value ? *change.value : json()}));
    return line;
}

}  // namespace

RecordJournal::RecordJournal(std::string path) : path_(std::move(path)), log_path_(path_ + ".log") {}

RecordJournal::~RecordJournal() {
    if (log_fd_ >= 0) ::close(log_fd_);
}

void RecordJournal::apply(const std::vector<RecordChange>& changes) {
    for (const auto& change : changes) {
        auto& section = records_[change.section];
        if (change.value) {
            if (section.insert_or_assign(change.key, *change.value).second) ++record_count_;
        } else if (section.erase(change.key)) {
            --record_count_;
        }
    }
}

std::optional<Records> RecordJournal::load(const std::function<Records(const json& document)>& from_older) {
    loaded_ = true;
    records_.clear();
    record_count_ = 0;
    generation_ = 0;
    const auto snapshot = read_file_if_exists(path_);  // throws naming the file
    if (!snapshot) return std::nullopt;
    try {
        const json document = json::parse(*snapshot);
        if (!document.contains("records")) {
            records_ = from_older(document);
        } else {
            generation_ = document.at("generation").get<std::int64_t>();
            records_ = document.at("records").get<Records>();
        }
    } catch (const std::exception& e) {
        throw std::runtime_error("the state file " + path_ + " is corrupt (" + e.what() + ")");
    }
    for (const auto& [section, records] : records_) record_count_ += records.size();

    if (const auto log = read_file_if_exists(log_path_)) {
        std::size_t number = 0, start = 0;
        bool current = false;
        // A last line without its newline is a save that never returned.
        for (std::size_t end = log->find('\n'); end != std::string::npos; start = end + 1, end = log->find('\n', start)) {
            ++number;
            try {
                const json line = json::parse(log->substr(start, end - start));
                if (number == 1) {
                    current = line.at("generation").get<std::int64_t>() == generation_;
                    if (!current) break;  // older than the snapshot, which holds it all
                    continue;
                }
                std::vector<RecordChange> changes;
                for (const auto& change : line) {
                    const json& value = change.at(2);
                    changes.push_back({change.at(0).get<std::string>(), change.at(1).get<std::string>(),
                                       value.is_null() ? std::nullopt : std::optional<json>(value)});
                }
                apply(changes);
            } catch (const std::exception& e) {
                throw std::runtime_error("the state log " + log_path_ + " is corrupt at line " + std::to_string(number) + " (" + e.what() + ")");
            }
        }
    }
    if (log_fd_ >= 0) ::close(log_fd_);
    log_fd_ = -1;  // the first save writes a new snapshot: a torn line is never appended to
    return records_;
}

void RecordJournal::compact() {
    if (log_fd_ >= 0) ::close(log_fd_);
    log_fd_ = -1;
    const std::int64_t next = generation_ + 1;
    replace_file_durably(path_, json{{"version", 2}, {"generation", next}, {"records", records_}}.dump(1));
    generation_ = next;
    // The snapshot holds everything: a log of the previous generation is ignored from here on.
    replace_file_durably(log_path_, json{{"generation", next}}.dump() + "\n");
    log_fd_ = ::open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log_fd_ < 0) throw std::runtime_error("cannot open " + log_path_ + ": " + std::strerror(errno));
    log_lines_ = 0;
}

void RecordJournal::save(const std::vector<RecordChange>& changes) {
    if (!loaded_) throw std::logic_error("RecordJournal::save before load: " + path_);
    if (changes.empty()) return;
    struct stat log {};
    if (log_fd_ >= 0 && (::fstat(log_fd_, &log) != 0 || log.st_nlink == 0)) {  // the log was removed or replaced under us:
        ::close(log_fd_);                                                       // appends would reach no file
        log_fd_ = -1;
    }
    if (log_fd_ >= 0 && log_lines_ < std::max(kMinLogLines, record_count_)) {
        try {
            append_all(log_fd_, line_of(changes).dump() + "\n");
            if (::fdatasync(log_fd_) != 0) throw std::system_error(errno, std::generic_category());
        } catch (const std::system_error& e) {
            ::close(log_fd_);
            log_fd_ = -1;  // a torn line may follow the last good one: the next save starts a new log
            throw std::runtime_error("cannot append to " + log_path_ + ": " + e.what());
        }
        apply(changes);
        ++log_lines_;
        return;
    }
    Records before = records_;  // linear, as the snapshot written below is
    apply(changes);
    try {
        compact();
    } catch (...) {
        // Unless the new snapshot was written and only its log failed: then a restart loads it.
        records_ = std::move(before);
        record_count_ = 0;
        for (const auto& [section, records] : records_) record_count_ += records.size();
        throw;
    }
}

}  // namespace brfusion
