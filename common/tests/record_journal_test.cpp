#include "brfusion/common/record_journal.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using brfusion::RecordChange;
using brfusion::RecordJournal;
using brfusion::Records;
using nlohmann::json;

namespace {

struct TempDir {
    std::string path = std::filesystem::temp_directory_path() / ("brfusion-journal-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    TempDir() { std::filesystem::create_directories(path); }
    ~TempDir() { std::filesystem::remove_all(path); }
    static inline int counter = 0;
};

Records no_older(const json&) { throw std::runtime_error("no older format here"); }

std::string text_of(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

std::size_t lines_of(const std::string& path) {
    const std::string text = text_of(path);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("record journal: saves load again - by the change - across compactions") {
    TempDir dir;
    const std::string path = dir.path + "/state.json";
    {
        RecordJournal journal(path);
        CHECK_FALSE(journal.load(no_older));
        CHECK_FALSE(std::filesystem::exists(path));  // nothing saved, nothing written
        for (int i = 0; i < 1000; ++i) journal.save({{"nic", "n" + std::to_string(i), json{{"i", i}}}});
        for (int i = 0; i < 1000; i += 2) journal.save({{"nic", "n" + std::to_string(i), std::nullopt}, {"lease", "l" + std::to_string(i), json(i)}});
        // The log never holds more saves than the snapshot holds records (plus its header).
        CHECK(lines_of(path + ".log") <= 1000 + 1);
    }
    RecordJournal again(path);
    const auto records = again.load(no_older);
    REQUIRE(records);
    CHECK(records->at("nic").size() == 500);
    CHECK(records->at("nic").at("n1") == json{{"i", 1}});
    CHECK_FALSE(records->at("nic").contains("n0"));
    CHECK(records->at("lease").size() == 500);
    CHECK(records->at("lease").at("l998") == json(998));
    again.save({{"nic", "n1", json{{"i", -1}}}});  // the first save after a load writes a new snapshot
    CHECK(lines_of(path + ".log") == 1);
    CHECK(json::parse(text_of(path)).at("records").at("nic").size() == 500);
    CHECK(json::parse(text_of(path)).at("records").at("nic").at("n1") == json{{"i", -1}});
}

TEST_CASE("record journal: a torn last line is a save that never returned - a bad line elsewhere is named - an older log is not applied") {
    TempDir dir;
    const std::string path = dir.path + "/state.json";
    {
        RecordJournal journal(path);
        journal.load(no_older);
        journal.save({{"nic", "a", json(1)}});
        journal.save({{"nic", "b", json(2)}});
    }
    std::ofstream(path + ".log", std::ios::app) << R"([["nic","c",3]])";  // no newline: torn
    {
        RecordJournal journal(path);
        const auto records = journal.load(no_older);
        CHECK(records->at("nic") == std::map<std::string, json>{{"a", json(1)}, {"b", json(2)}});
        journal.save({{"nic", "d", json(4)}});  // a new snapshot
        journal.save({{"nic", "f", json(6)}});  // the log's line 2
    }
    const std::string log = text_of(path + ".log");
    std::ofstream(path + ".log") << log << "{not json\n" << R"([["nic","e",5]])" << "\n";
    RecordJournal corrupt(path);
    REQUIRE_THROWS_WITH(corrupt.load(no_older), Catch::Contains(path + ".log is corrupt at line 3"));

    // A crash after a compaction's snapshot, before its log: the old log is in the snapshot already.
    std::ofstream(path + ".log") << R"({"generation":1})" << "\n" << R"([["nic","a",null]])" << "\n";
    RecordJournal newer(path);
    CHECK(newer.load(no_older)->at("nic").contains("a"));
}

TEST_CASE("record journal: an earlier whole-state file is read through the caller - save before load is a bug") {
    TempDir dir;
    const std::string path = dir.path + "/state.json";
    std::ofstream(path) << R"({"version":1,"things":["x","y"]})";
    RecordJournal journal(path);
    const auto records = journal.load([](const json& document) {
        Records converted;
        for (const auto& thing : document.at("things")) converted["thing"][thing.get<std::string>()] = true;
        return converted;
    });
    CHECK(records->at("thing").size() == 2);
    journal.save({{"thing", "z", json(true)}});
    CHECK(json::parse(text_of(path)).at("version") == 2);  // rewritten in this format
    CHECK(json::parse(text_of(path)).at("records").at("thing").size() == 3);

    RecordJournal unloaded(dir.path + "/other.json");
    CHECK_THROWS_AS(unloaded.save({{"nic", "a", json(1)}}), std::logic_error);
}

TEST_CASE("record journal: a section's diff names what changed and brings the saved copy up to date") {
    std::map<std::string, int> saved{{"a", 1}, {"b", 2}, {"c", 3}}, current{{"a", 1}, {"b", 20}, {"d", 4}};
    std::vector<RecordChange> changes;
    const auto diff = brfusion::diff_section("n", saved, current, [](const auto& e) { return e.first; }, [](const auto& e) { return json(e.second); }, changes);
    REQUIRE(changes.size() == 3);
    CHECK((changes[0].key == "b" && changes[0].value == json(20)));
    CHECK((changes[1].key == "c" && !changes[1].value));
    CHECK((changes[2].key == "d" && changes[2].value == json(4)));
    brfusion::sync_section(saved, diff);
    CHECK(saved == current);

    std::set<std::string> saved_set{"x", "y"}, current_set{"y", "z"};
    changes.clear();
    const auto set_diff = brfusion::diff_section("s", saved_set, current_set, [](const auto& e) { return e; }, [](const auto&) { return json(true); }, changes);
    CHECK(changes.size() == 2);
    brfusion::sync_section(saved_set, set_diff);
    CHECK(saved_set == current_set);
}

TEST_CASE("record journal: a log removed under it is not appended to - the save writes a new snapshot, or fails naming the file") {
    TempDir dir;
    const std::string path = dir.path + "/state.json";
    RecordJournal journal(path);
    journal.load(no_older);
    journal.save({{"nic", "a", json(1)}});
    journal.save({{"nic", "b", json(2)}});
    std::filesystem::remove(path + ".log");
    journal.save({{"nic", "c", json(3)}});
    CHECK(RecordJournal(path).load(no_older)->at("nic").size() == 3);

    std::filesystem::remove_all(dir.path);
    std::ofstream(dir.path) << "a file where the state directory should be";
    CHECK_THROWS_WITH(journal.save({{"nic", "d", json(4)}}), Catch::Contains(dir.path));
    std::filesystem::remove(dir.path);
}
