#pragma once
// JSON from peers, bounded: framing for byte streams that carry concatenated JSON texts with no
// delimiter between them (OVSDB, RFC 7047 §3; QMP; also newline-delimited JSON, since whitespace
// between texts is skipped), and parsing of one text with a nesting limit.
//
// Why the nesting limit: nlohmann::json copies, compares and prints values recursively, so a text
// nested 100,000 deep (200 KB) overflows the stack of whoever copies it. A text is refused before
// it is parsed when it nests deeper than its reader allows.

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace brfusion {

// Thrown when the stream cannot be framed or parsed. The stream is unusable afterwards: the peer
// and we disagree about where texts begin, so the only safe recovery is a new connection.
struct JsonStreamError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// How deep a peer's JSON may nest unless its reader says otherwise (QMP's and OVSDB's deepest
// replies nest well under 32).
inline constexpr int kDefaultMaxJsonDepth = 64;

// Follows JSON's structure one byte at a time: string and escape state, and the nesting depth of
// objects and arrays. It does not validate; json::parse does that once a text is complete.
struct JsonScanner {
    int depth = 0;  // objects and arrays open at the last byte fed
    bool in_string = false;
    bool escaped = false;
    // Feeds one byte; returns true when it closed the outermost object or array.
    bool feed(char c) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            return false;
        }
        if (c == '"') in_string = true;
        else if (c == '{' || c == '[') ++depth;
        else if (c == '}' || c == ']') return --depth == 0;
        return false;
    }
};

// One JSON text, parsed, or nullopt with `error` saying why not: not JSON, or nested deeper than
// `max_depth` objects and arrays (checked before parsing).
std::optional<nlohmann::json> parse_json_bounded(std::string_view text, int max_depth, std::string& error);

// Splits a byte stream into complete top-level JSON objects/arrays. Feed bytes as they arrive with
// append(); then call next() until it returns nullopt. Scanning is incremental: each byte is
// looked at once, however the stream is split into reads. Not thread-safe.
class JsonStreamFramer {
public:
    // `max_text_bytes` bounds one text, so a peer cannot make us buffer without limit;
    // `max_depth` bounds its nesting (see above).
    explicit JsonStreamFramer(std::size_t max_text_bytes = 64 * 1024 * 1024, int max_depth = kDefaultMaxJsonDepth)
        : max_text_bytes_(max_text_bytes), max_depth_(max_depth) {}

    void append(std::string_view bytes) { buffer_.append(bytes); }

    // The next complete text, parsed. Throws JsonStreamError on a text that is not JSON, a stray
    // byte between texts, a text longer than the limit or one nested deeper than the limit.
    std::optional<nlohmann::json> next();

    // Bytes received but not yet returned as a text.
    std::size_t pending_bytes() const { return buffer_.size(); }

private:
    std::string buffer_;
    std::size_t scan_ = 0;  // bytes of buffer_ already scanned for the current text
    JsonScanner scanner_;
    std::size_t max_text_bytes_;
    int max_depth_;
};

}  // namespace brfusion
