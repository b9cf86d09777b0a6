#pragma once
// Framing for byte streams that carry concatenated JSON texts with no delimiter between them
// (OVSDB, RFC 7047 §3; QMP; also newline-delimited JSON, since whitespace between texts is skipped).

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

// Splits a byte stream into complete top-level JSON objects/arrays. Feed bytes as they arrive with
// append(); then call next() until it returns nullopt. Scanning is incremental: each byte is
// looked at once, however the stream is split into reads. Not thread-safe.
class JsonStreamFramer {
public:
    // `max_text_bytes` bounds one text, so a peer cannot make us buffer without limit.
    explicit JsonStreamFramer(std::size_t max_text_bytes = 64 * 1024 * 1024) : max_text_bytes_(max_text_bytes) {}

    void append(std::string_view bytes) { buffer_.append(bytes); }

    // The next complete text, parsed. Throws JsonStreamError on a text that is not JSON, a stray
    // byte between texts, or a text longer than the limit.
    std::optional<nlohmann::json> next();

    // Bytes received but not yet returned as a text.
    std::size_t pending_bytes() const { return buffer_.size(); }

private:
    std::string buffer_;
    std::size_t scan_ = 0;   // bytes of buffer_ already scanned for the current text
    int depth_ = 0;          // nesting depth at scan_
    bool in_string_ = false;
    bool escaped_ = false;
    std::size_t max_text_bytes_;
};

}  // namespace brfusion
