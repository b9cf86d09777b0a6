#include "brfusion/common/json_stream.hpp"

#include <catch2/catch.hpp>

#include <vector>

using brfusion::JsonStreamError;
using brfusion::JsonStreamFramer;
using nlohmann::json;

namespace {
std::vector<json> drain(JsonStreamFramer& framer) {
    std::vector<json> texts;
    while (auto text = framer.next()) texts.push_back(std::move(*text));
    return texts;
}
}  // namespace

TEST_CASE("concatenated texts are split - whatever the read boundaries") {
    // Strings hold every character that could confuse a brace counter.
    const std::string stream =
        R"({"id":1,"result":["a}","b]\"{"]} [1,[2,{"x":"\\"}]])" "\n"
        R"({"method":"echo","params":[],"id":"echo"})";
    const std::vector<json> expected = {
        json::parse(R"({"id":1,"result":["a}","b]\"{"]})"),
        json::parse(R"([1,[2,{"x":"\\"}]])"),
        json::parse(R"({"method":"echo","params":[],"id":"echo"})"),
    };
    for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
        JsonStreamFramer framer;
        std::vector<json> got;
        for (std::size_t at = 0; at < stream.size(); at += chunk) {
            framer.append(std::string_view(stream).substr(at, chunk));
            for (auto& text : drain(framer)) got.push_back(std::move(text));
        }
        INFO("chunk size " << chunk);
        CHECK(got == expected);
        CHECK(framer.pending_bytes() == 0);
    }
}

TEST_CASE("an incomplete text is held until it completes") {
    JsonStreamFramer framer;
    framer.append(R"({"a":[1,2)");
    CHECK_FALSE(framer.next());
    framer.append("]}");
    auto text = framer.next();
    REQUIRE(text);
    CHECK((*text)["a"] == json::array({1, 2}));
}

TEST_CASE("garbage between texts and invalid JSON are errors - not silently skipped") {
    JsonStreamFramer stray;
    stray.append("{} x{}");
    CHECK(stray.next());
    CHECK_THROWS_AS(stray.next(), JsonStreamError);

    JsonStreamFramer invalid;
    invalid.append("{\"a\" 1}");
    CHECK_THROWS_AS(invalid.next(), JsonStreamError);
}

TEST_CASE("a text longer than the limit is refused") {
    JsonStreamFramer framer(16);
    framer.append(R"({"padding":"0123456789abcdef")");
    CHECK_THROWS_WITH(framer.next(), Catch::Contains("exceeds 16 bytes"));
}
