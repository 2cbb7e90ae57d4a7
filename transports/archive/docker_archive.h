// The docker-archive: transport: `docker save` tarballs (manifest.json, the config and layer
// files, `repositories` and the legacy per-layer directories), read and written as
// containers/image reads and writes them.
//
// Source: the image is chosen by a RepoTags entry or an index into manifest.json (neither for
// a one-image archive). Its manifest is synthesized as containers/image synthesizes it — a
// Docker v2s2 manifest whose layer digests are the config's diff_ids — so layers are served
// uncompressed (a compressed layer file is decompressed on its way out). A plain tar is
// indexed once and its members read with pread; a gzip- or zstd-compressed archive is read in
// streaming passes. Nothing is unpacked to disk. Thread-safe.
//
// Destination: writes what `skopeo copy … docker-archive:` writes, entry for entry, to any
// ArchiveSink. It wants layers uncompressed and one blob at a time (a tar is a sequence); a
// blob whose size is not known in advance is spooled to an unlinked temporary file first,
// since its tar header needs the size. Nothing reaches the sink's name before Commit().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "transports/archive/archive_sink.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_reference.h"
#include "transports/types/image_source.h"
#include "transports/util/file_util.h"

namespace regfs {

// `ref` is empty or a docker reference naming a RepoTags entry (normalized: "busybox" is
// docker.io/library/busybox:latest); `index` is -1 or a 0-based index into manifest.json; at
// most one of them is given. With neither, the archive must hold exactly one image.
Result<std::unique_ptr<ImageSource>> NewDockerArchiveSource(const std::string& path,
                                                            const std::string& ref, int index);

// The same, from an archive already open (e.g. an unlinked temporary file holding what a
// Docker engine sent), named `description` in messages.
Result<std::unique_ptr<ImageSource>> NewDockerArchiveSource(UniqueFd archive,
                                                            std::string description,
                                                            const std::string& ref, int index);

// An archive written to `out`, tagged `tag` in manifest.json and `repositories` (untagged
// when nullopt), named `description` in messages ("docker-archive:/tmp/x.tar").
Result<std::unique_ptr<ImageDestination>> NewDockerArchiveDestination(
    std::unique_ptr<ArchiveSink> out, std::optional<DockerReference> tag, std::string description);

// An archive file at `path`: refused when `path` is a non-empty regular file (as skopeo
// refuses to modify an existing archive); written beside it and renamed on Commit().
Result<std::unique_ptr<ImageDestination>> NewDockerArchiveFileDestination(
    const std::string& path, std::optional<DockerReference> tag);

}  // namespace regfs
