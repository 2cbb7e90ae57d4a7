// Standard base64 (RFC 4648, with padding), as auth.json's "auth" and HTTP Basic use it.
#pragma once

#include <string>
#include <string_view>

#include "transports/util/result.h"

namespace regfs {

std::string Base64Encode(std::string_view in);

// EINVAL for anything but whole, padded base64 (a trailing line break is allowed).
Result<std::string> Base64Decode(std::string_view in);

}  // namespace regfs
