#include "brfusion/common/json_stream.hpp"

namespace brfusion {

namespace {
bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

std::optional<nlohmann::json> JsonStreamFramer::next() {
    if (depth_ == 0 && scan_ == 0) {
        // Between texts: drop separators so that the next text starts at buffer_[0].
        std::size_t start = 0;
        while (start < buffer_.size() && is_json_whitespace(buffer_[start])) ++start;
        buffer_.erase(0, start);
        if (buffer_.empty()) return std::nullopt;
        if (buffer_[0] != '{' && buffer_[0] != '[')
            throw JsonStreamError("expected '{' or '[' at the start of a JSON text, got '" + std::string(1, buffer_[0]) + "'");
    }
    for (; scan_ < buffer_.size(); ++scan_) {
        const char c = buffer_[scan_];
        if (in_string_) {
            if (escaped_) escaped_ = false;
            else if (c == '\\') escaped_ = true;
            else if (c == '"') in_string_ = false;
            continue;
        }
        if (c == '"') in_string_ = true;
        else if (c == '{' || c == '[') ++depth_;
        else if ((c == '}' || c == ']') && --depth_ == 0) {
            const std::size_t length = scan_ + 1;
            nlohmann::json text = nlohmann::json::parse(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(length), nullptr, false);
            buffer_.erase(0, length);
            scan_ = 0;
            if (text.is_discarded()) throw JsonStreamError("received a text that is not valid JSON");
            return text;
        }
    }
    if (buffer_.size() > max_text_bytes_)
        throw JsonStreamError("a JSON text exceeds " + std::to_string(max_text_bytes_) + " bytes");
    return std::nullopt;
}

}  // namespace brfusion
