// ByteSink: a consumer of streamed bytes, shared by sources, the registry client and the pipeline.
#pragma once

#include <cstddef>
#include <functional>

#include "transports/util/result.h"

namespace regfs {

// Receives bytes in order; an error aborts the transfer and is returned as is.
using ByteSink = std::function<Status(const char* data, size_t n)>;

}  // namespace regfs
