// The docker-daemon: transport: images held by a Docker engine, read with `docker save` and
// written with `docker load`, as containers/image's docker/daemon reads and writes them.
//
// Source: the engine's tar of the image is streamed into an unlinked temporary file (a
// `docker save` tar puts manifest.json last, so it can't be read as it arrives) and read
// from there as a docker-archive: (archive/docker_archive.h); the file goes with the source.
//
// Destination: a docker-archive: written straight into the body of POST /images/load while
// the copy produces it, tagged with the reference (a destination must be NAME:TAG). Commit()
// ends the tar and returns the engine's verdict; a destination destroyed without Commit()
// breaks the upload off before the tar ends, so the engine loads nothing.
#pragma once

#include <memory>

#include "transports/daemon/daemon_client.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_reference.h"
#include "transports/types/image_source.h"

namespace regfs {

// `ref` is a docker-daemon: reference (Transport::kDockerDaemon).
Result<std::unique_ptr<ImageSource>> NewDaemonSource(const ImageReference& ref,
                                                     std::shared_ptr<DaemonClient> client);

// EINVAL unless `ref` is a docker-daemon: NAME:TAG.
Result<std::unique_ptr<ImageDestination>> NewDaemonDestination(
    const ImageReference& ref, std::shared_ptr<DaemonClient> client);

}  // namespace regfs
