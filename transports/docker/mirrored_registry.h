// MirroredRegistry: one registry host with the registries.conf rules of pulling applied to
// every call, for the mount, which reads images call by call rather than image by image
// (mirrored_source is the commands' form).
//
// A read of a repository tries the places containers-registries.conf(5) gives for it, in
// order: its entry's mirrors (as `mirror-by-digest-only` and `pull-from-mirror` allow for a
// tag or a digest), then the entry's location, rewritten from its prefix as `copy` rewrites
// it. Manifests and tag lists are read as by a tag or a digest; a blob, being addressed by
// digest, as by a digest. Writes, and BlobExists — the question a push asks of the
// destination — go to the origin alone, as pushes do: a mirror that had the blob would not
// make the origin have it. A repository whose entry is `blocked` is refused (EACCES) without
// a request. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "transports/config/registries_conf.h"
#include "transports/registry/registry.h"

namespace regfs {

// The client that serves one place a pull may come from.
using PullSourceClient = std::function<std::shared_ptr<Registry>(const PullSource& place)>;

// `origin` is the host as named in the tree; `client_for` gives the client of each place
// (the origin's own client for a place on the origin's host). `log` (optional) hears why a
// place was passed over.
std::shared_ptr<Registry> NewMirroredRegistry(std::shared_ptr<Registry> origin,
                                              std::shared_ptr<const RegistriesConf> conf,
                                              PullSourceClient client_for, LogFn log);

}  // namespace regfs
