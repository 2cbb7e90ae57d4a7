// The oci: transport: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`), the
// image named by its `org.opencontainers.image.ref.name` annotation.
#pragma once

#include <memory>
#include <string>

#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

// With an empty `ref`, the layout must hold exactly one image.
Result<std::unique_ptr<ImageSource>> NewOciSource(const std::string& path, const std::string& ref);

// The files of an OCI layout wherever they are (a directory, a tar read in place), by their
// names relative to the layout's root ("index.json", "blobs/sha256/<hex>"). Thread-safe.
class OciLayoutFiles {
 public:
  virtual ~OciLayoutFiles() = default;
  // A whole file; EFBIG when larger than `max`, ENOENT when absent.
  virtual Result<std::string> ReadFile(const std::string& name, int64_t max) const = 0;
  virtual Status StreamFile(const std::string& name, const ByteSink& sink) const = 0;
};

// A source over `files`, named `description` in messages ("oci-archive:/x.tar:ref").
Result<std::unique_ptr<ImageSource>> NewOciSource(std::shared_ptr<const OciLayoutFiles> files,
                                                  std::string description, const std::string& ref);

// Manifests are stored as they are (digests preserved). Commit() writes index.json, replacing
// any entry with the same ref name; a layout directory created by a failed copy is removed.
Result<std::unique_ptr<ImageDestination>> NewOciDestination(const std::string& path,
                                                            const std::string& ref);

}  // namespace regfs
