// The transports an image reference may name, as a user writes them: one list for
// ParseImageReference's messages, regfs --help, the man pages and shell completion, so that
// none of them offers a transport the parser refuses or misses one it takes.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace regfs {

struct TransportForm {
  std::string_view prefix;  // what a reference starts with: "docker://", "dir:"
  std::string_view form;    // the whole reference: "docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"
  std::string_view what;    // "an image in a registry"
  bool path = false;        // what follows the prefix starts with a file system path
};

// In the order they are listed to the user.
std::span<const TransportForm> TransportForms();

// "docker://, dir:, oci:" (with `forms`, "docker://HOST…, dir:PATH, oci:PATH[:REF]").
std::string TransportList(bool forms);

}  // namespace regfs
