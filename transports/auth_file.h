// Credentials from containers-auth.json(5) files, in the containers tools' search order:
// --authfile alone when given; else $REGISTRY_AUTH_FILE; else
// ${XDG_RUNTIME_DIR}/containers/auth.json, ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
// ~/.docker/config.json and ~/.dockercfg, the first file with an entry for the image winning.
// Within a file the most specific key wins: host/ns/repo, then host/ns, then host.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/result.h"

namespace regfs {

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token, when the file has one
};

// "user:pass" from --creds; EINVAL when there is no ':'.
Result<Credentials> ParseCredsFlag(std::string_view creds);

// The files to search, in order. `authfile` is the --authfile flag ("" when absent).
std::vector<std::string> AuthFileSearchPath(const std::string& authfile);

// Looks up credentials for `registry` and `repository` in one file's contents.
// An unreadable entry (bad base64, no colon) is an error; no entry is nullopt.
Result<std::optional<Credentials>> LookupCredentialsIn(std::string_view file_contents,
                                                       std::string_view registry,
                                                       std::string_view repository);

// Looks up along the search path. Files that don't exist are skipped; a file that exists but
// can't be parsed is an error naming it.
Result<std::optional<Credentials>> LookupCredentials(const std::string& authfile,
                                                     std::string_view registry,
                                                     std::string_view repository);

}  // namespace regfs
