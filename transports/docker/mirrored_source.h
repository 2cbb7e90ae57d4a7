// An ImageSource over several places that serve one image — registries.conf mirrors, then the
// origin (containers-registries.conf(5)): the first that serves the top-level manifest serves
// the whole image; the others are not asked again. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transports/types/image_source.h"

namespace regfs {

// `candidates` in order of preference, the origin last; none may be null. `log` (optional)
// hears why a candidate was passed over.
std::unique_ptr<ImageSource> NewMirroredSource(std::vector<std::unique_ptr<ImageSource>> candidates,
                                               std::function<void(const std::string&)> log);

}  // namespace regfs
