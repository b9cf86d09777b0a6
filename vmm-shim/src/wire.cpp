#include "brfusion/shim/wire.hpp"

#include "brfusion/common/guest_protocol.hpp"

namespace brfusion::shim {

int jsonrpc_code(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::BadRequest: return guest::kInvalidParams;
    case ErrorKind::NotAllowed: return guest::kNotAllowed;
    case ErrorKind::NotFound: return guest::kNotFound;
    case ErrorKind::Conflict: return guest::kConflict;
    case ErrorKind::Exhausted: return guest::kExhausted;
    case ErrorKind::Backend: return guest::kBackend;
    }
    return guest::kBackend;
}

int http_status(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::BadRequest: return 400;
    case ErrorKind::NotAllowed: return 403;
    case ErrorKind::NotFound: return 404;
    case ErrorKind::Conflict: return 409;
    case ErrorKind::Exhausted: return 409;
    case ErrorKind::Backend: return 502;
    }
    return 500;
}

const char* kind_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::BadRequest: return "bad-request";
    case ErrorKind::NotAllowed: return "not-allowed";
    case ErrorKind::NotFound: return "not-found";
    case ErrorKind::Conflict: return "conflict";
    case ErrorKind::Exhausted: return "exhausted";
    case ErrorKind::Backend: return "backend";
    }
    return "backend";
}

}  // namespace brfusion::shim
