// The dir: transport, byte-compatible with skopeo's directory layout (version 1.1):
// `version`, `manifest.json`, one file per blob named by its hex digest, and for an index
// copied with --all, `<hex>.manifest.json` per instance.
#pragma once

#include <memory>
#include <string>

#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"
#include "transports/util/file_util.h"

namespace regfs {

inline constexpr std::string_view kDirVersion = "Directory Transport Version: 1.1\n";

Result<std::unique_ptr<ImageSource>> NewDirSource(const std::string& path);

// Refuses, as skopeo does, a path that exists and is neither empty nor an image directory.
// The image is assembled beside `path` and renamed into place by Commit(); an existing image
// directory is replaced whole.
Result<std::unique_ptr<ImageDestination>> NewDirDestination(const std::string& path);

}  // namespace regfs
