#pragma once
// The one place where ShimError kinds become wire codes (guest channel and admin API).

#include "brfusion/shim/error.hpp"

namespace brfusion::shim {

int jsonrpc_code(ErrorKind kind);  // brfusion::guest::ErrorCode
int http_status(ErrorKind kind);
const char* kind_name(ErrorKind kind);  // "not-allowed", ...

}  // namespace brfusion::shim
