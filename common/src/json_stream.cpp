#include "brfusion/common/json_stream.hpp"

namespace brfusion {

namespace {
bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string too_deep(int max_depth) { return "it nests objects and arrays deeper than " + std::to_string(max_depth) + " levels"; }
}  // namespace

std::optional<nlohmann::json> parse_json_bounded(std::string_view text, int max_depth, std::string& error) {
    JsonScanner scanner;
    for (const char c : text) {
        scanner.feed(c);
        if (scanner.depth > max_depth) {
            error = too_deep(max_depth);
            return std::nullopt;
        }
    }
    nlohmann::json parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (parsed.is_discarded()) {
        error = "it is not valid JSON";
        return std::nullopt;
    }
    return parsed;
}

std::optional<nlohmann::json> JsonStreamFramer::next() {
    if (scanner_.depth == 0 && scan_ == 0) {
        // Between texts: drop separators so that the next text starts at buffer_[0].
        std::size_t start = 0;
        while (start < buffer_.size() && is_json_whitespace(buffer_[start])) ++start;
        buffer_.erase(0, start);
        if (buffer_.empty()) return std::nullopt;
        if (buffer_[0] != '{' && buffer_[0] != '[')
            throw JsonStreamError("expected '{' or '[' at the start of a JSON text, got '" + std::string(1, buffer_[0]) + "'");
    }
    for (; scan_ < buffer_.size(); ++scan_) {
        const bool complete = scanner_.feed(buffer_[scan_]);
        if (scanner_.depth > max_depth_) throw JsonStreamError("received a JSON text that " + too_deep(max_depth_));
        if (!complete) continue;
        const std::size_t length = scan_ + 1;
        nlohmann::json text = nlohmann::json::parse(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(length), nullptr, false);
        buffer_.erase(0, length);
        scan_ = 0;
        scanner_ = {};
        if (text.is_discarded()) throw JsonStreamError("received a text that is not valid JSON");
        return text;
    }
    if (buffer_.size() > max_text_bytes_)
        throw JsonStreamError("a JSON text exceeds " + std::to_string(max_text_bytes_) + " bytes");
    return std::nullopt;
}

}  // namespace brfusion
