#pragma once
// Crash-safe state made of many small records, saved by the change: a save costs what changed,
// not what is kept (the shim's NICs and leases, the plugin's endpoints, by the thousand).
//
// On disk, side by side:
//   PATH      the snapshot, {"version": 2, "generation": G, "records": {SECTION: {KEY: VALUE}}},
//             written as replace_file_durably writes (an admin reads the state here and in PATH.log);
//   PATH.log  the saves since: a first line {"generation": G}, then one line per save,
//             [[SECTION, KEY, VALUE or null], ...] (null: the record is gone), appended and
//             fdatasync'd.
// When the log holds more saves than the snapshot holds records (and at least kMinLogLines), the
// next save writes a new snapshot with the next generation and starts a new log: on average a save
// writes a bounded number of records, and a load stays linear in the state. A log whose generation
// is not the snapshot's is older than it (a crash between the two files) and is not applied.
//
// A save that finds its log removed or replaced (by an admin, say) writes a new snapshot instead
// of appending to a file no one can read again.
//
// A crash while appending leaves a last line without its newline: that save never returned, and
// load ignores it. Any other bad line is corruption: load throws naming the file and the line.
// Not thread-safe: one owner per path, who serializes its saves.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion {

struct RecordChange {
    std::string section, key;
    std::optional<nlohmann::json> value;  // nullopt: the record is gone
};
using Records = std::map<std::string, std::map<std::string, nlohmann::json>>;  // section -> key -> value

// The records of `section`: an empty map when it has none.
inline const std::map<std::string, nlohmann::json>& section_of(const Records& records, const std::string& section) {
    static const std::map<std::string, nlohmann::json> kEmpty;
    const auto found = records.find(section);
    return found == records.end() ? kEmpty : found->second;
}

class RecordJournal {
public:
    static constexpr std::size_t kMinLogLines = 64;

    explicit RecordJournal(std::string path);
    ~RecordJournal();
    RecordJournal(const RecordJournal&) = delete;
    RecordJournal& operator=(const RecordJournal&) = delete;

    // The records as last saved: the snapshot with its log applied; nullopt when nothing was ever
    // saved. `from_older` turns a snapshot document of an earlier format (one without "records":
    // a whole state in one file) into records. Throws std::runtime_error naming the file and what
    // is wrong. Writes nothing (so a second reader may load while the owner saves); the first save
    // after it writes a new snapshot. Must come before the first save.
    std::optional<Records> load(const std::function<Records(const nlohmann::json& document)>& from_older);
    // Saves `changes` as one unit: after a crash all of them load, or none. Throws
    // std::runtime_error naming the file; the records are then as before this save (on disk too,
    // unless a new snapshot was written and only starting its log failed), and the next save
    // writes a new snapshot (a failed append may have left a torn line).
    void save(const std::vector<RecordChange>& changes);

    const std::string& path() const { return path_; }

private:
    void compact();
    void apply(const std::vector<RecordChange>& changes);

    std::string path_, log_path_;
    bool loaded_ = false;
    Records records_;              // as saved: what the next snapshot holds
    std::size_t record_count_ = 0;
    std::int64_t generation_ = 0;  // the snapshot's
    std::size_t log_lines_ = 0;    // saves in the current log
    int log_fd_ = -1;              // the current log, open for appends; -1: the next save compacts
};

// Appends to `changes` what turns `saved` into `current` for one section, both sorted containers
// of the same type (std::map: compared by key, then value; std::set: by element): `key_of` and
// `value_of` take an element. Returns the elements of `current` that differ, and the keys gone, so
// that the caller updates `saved` once the save succeeded (sync_section). Cost: one comparison per
// element, and a conversion per change.
template <typename Container>
struct SectionDiff {
    std::vector<typename Container::const_iterator> changed;
    std::vector<typename Container::key_type> gone;
};

template <typename Container, typename KeyOf, typename ValueOf>
SectionDiff<Container> diff_section(const std::string& section, const Container& saved, const Container& current, KeyOf key_of,
                                    ValueOf value_of, std::vector<RecordChange>& changes) {
    SectionDiff<Container> diff;
    const auto less = current.value_comp();
    auto s = saved.begin();
    auto c = current.begin();
    while (s != saved.end() || c != current.end()) {
        if (c == current.end() || (s != saved.end() && less(*s, *c))) {
            changes.push_back({section, key_of(*s), std::nullopt});
            if constexpr (requires { typename Container::mapped_type; }) diff.gone.push_back(s->first);
            else diff.gone.push_back(*s);
            ++s;
        } else if (s == saved.end() || less(*c, *s)) {
            changes.push_back({section, key_of(*c), value_of(*c)});
            diff.changed.push_back(c++);
        } else {
            if (!(*s == *c)) {
                changes.push_back({section, key_of(*c), value_of(*c)});
                diff.changed.push_back(c);
            }
            ++s, ++c;
        }
    }
    return diff;
}

// Makes `saved` equal to the `current` that `diff` was taken from.
template <typename Container>
void sync_section(Container& saved, const SectionDiff<Container>& diff) {
    for (const auto& key : diff.gone) saved.erase(key);
    for (const auto& element : diff.changed) {
        if constexpr (requires { typename Container::mapped_type; }) saved.insert_or_assign(element->first, element->second);
        else saved.insert(*element);
    }
}

}  // namespace brfusion
