#include "transports/compression/compression.h"

#include <array>
#include <cstring>
#include <utility>

#include "transports/compression/codecs.h"

namespace regfs {

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kNone:
      break;
  }
  return "uncompressed";
}

Result<Compression> ParseCompressionName(std::string_view name) {
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  return MakeError(EINVAL,
                   "unsupported compression format \"" + std::string(name) + "\" (gzip or zstd)");
}

Compression DetectCompression(std::string_view b) {
  if (b.size() >= 2 && b[0] == '\x1f' && b[1] == '\x8b') return Compression::kGzip;
  if (b.size() >= 4 && std::memcmp(b.data(), "\x28\xb5\x2f\xfd", 4) == 0) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

std::optional<Compression> LayerMediaTypeCompression(std::string_view mt) {
  static constexpr std::array<std::pair<std::string_view, Compression>, 11> kTypes = {{
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", Compression::kNone},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
      // What some old Docker versions wrote for uncompressed layers.
      {"application/vnd.docker.image.rootfs.diff.tar.uncompressed", Compression::kNone},
  }};
  for (const auto& [type, c] : kTypes) {
    if (type == mt) return c;
  }
  return std::nullopt;
}

Result<std::unique_ptr<StreamCodec>> NewEncoder(Compression c, std::optional<int> level,
                                                ByteSink out) {
  switch (c) {
    case Compression::kGzip:
      return NewGzipEncoder(level.value_or(kDefaultGzipLevel), std::move(out));
    case Compression::kZstd:
      return NewZstdEncoder(level.value_or(kDefaultZstdLevel), std::move(out));
    case Compression::kNone:
      break;
  }
  return NewIdentityCodec(std::move(out), -1);
}

Result<std::unique_ptr<StreamCodec>> NewDecoder(Compression c, ByteSink out, int64_t max_output) {
  switch (c) {
    case Compression::kGzip:
      return NewGzipDecoder(std::move(out), max_output);
    case Compression::kZstd:
      return NewZstdDecoder(std::move(out), max_output);
    case Compression::kNone:
      break;
  }
  return NewIdentityCodec(std::move(out), max_output);
}

namespace {

// Collects a codec's whole output.
ByteSink AppendTo(std::string* s) {
  return [s](const char* data, size_t n) -> Status {
    s->append(data, n);
    return Ok();
  };
}

}  // namespace

Result<std::string> DecodeAll(Compression c, std::string_view data, int64_t max_output) {
  std::string out;
  ASSIGN_OR_RETURN(std::unique_ptr<StreamCodec> codec, NewDecoder(c, AppendTo(&out), max_output));
  RETURN_IF_ERROR(codec->Write(data.data(), data.size()));
  RETURN_IF_ERROR(codec->Finish());
  return out;
}

Result<std::string> EncodeAll(Compression c, std::optional<int> level, std::string_view data) {
  std::string out;
  ASSIGN_OR_RETURN(std::unique_ptr<StreamCodec> codec, NewEncoder(c, level, AppendTo(&out)));
  RETURN_IF_ERROR(codec->Write(data.data(), data.size()));
  RETURN_IF_ERROR(codec->Finish());
  return out;
}

}  // namespace regfs
