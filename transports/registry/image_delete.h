// Deleting images and tags at a registry, shared by `regfs delete` and the mount's unlink,
// rmdir and rename.
#pragma once

#include <string>
#include <vector>

#include "transports/registry/registry.h"

namespace regfs {

// Deletes the image `repo:ref` — by tag where the registry supports it, else by digest. Deleting
// by digest also removes every other tag on that digest: unless `force`, that is refused with
// EBUSY and a message naming them (`sharing` receives them).
Status DeleteImage(Registry& client, const std::string& repo, const std::string& ref, bool force,
                   std::vector<std::string>* sharing = nullptr);

// Removes only the tag `repo:tag`, never the image it names, even on a registry that deletes
// only by digest: there the tag is first moved to a placeholder manifest of its own (the same
// manifest with a unique annotation), and the placeholder is deleted by digest.
Status RemoveTag(Registry& client, const std::string& repo, const std::string& tag);

// The tags of `repo` other than `tag` that point at `digest`.
Result<std::vector<std::string>> TagsSharing(Registry& client, const std::string& repo,
                                             const std::string& tag, const std::string& digest);

}  // namespace regfs
