// ImageSource: where a copy reads an image from (a registry, a dir: or oci: directory).
//
// Sources do not verify blob bytes: the copy pipeline hashes every blob once while it streams.
// Manifests fetched by digest are checked by the source against that digest. A source may be
// used from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "transports/manifest/manifest.h"
#include "transports/types/image_reference.h"
#include "transports/types/signature.h"
#include "transports/util/byte_sink.h"
#include "transports/util/result.h"

namespace regfs {

struct BlobInfo {
  std::string digest;
  int64_t size = -1;
  std::string media_type;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;

  // For messages: "docker://127.0.0.1:5000/repo:tag", "dir:/tmp/x".
  virtual std::string Describe() const = 0;

  // The top-level manifest when `instance_digest` is empty, else that instance of the index.
  virtual Result<RawManifest> GetManifest(const std::string& instance_digest) = 0;

  // The top-level manifest's digest, without its bytes where the transport can (a HEAD).
  virtual Result<std::string> ManifestDigest() {
    ASSIGN_OR_RETURN(RawManifest m, GetManifest(""));
    return m.digest;
  }

  // The signatures stored for the manifest with `manifest_digest`: the top-level one, or an
  // instance of its index (`is_instance`). Unverified. None where the transport keeps none.
  virtual Result<std::vector<Signature>> GetSignatures(const std::string& manifest_digest,
                                                       bool is_instance) {
    (void)manifest_digest;
    (void)is_instance;
    return std::vector<Signature>{};
  }

  // Streams the blob's bytes, unverified, to `sink`.
  virtual Status GetBlob(const BlobInfo& blob, const ByteSink& sink) = 0;

  // Capability: the registry location of the image, so that a destination on the same
  // registry can mount blobs across repositories. nullptr for local sources.
  virtual const DockerReference* RegistryLocation() const { return nullptr; }
};

}  // namespace regfs
