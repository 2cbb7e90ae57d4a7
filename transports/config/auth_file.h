// Credentials from containers-auth.json(5) files, in the containers tools' search order:
// --authfile alone when given; else $REGISTRY_AUTH_FILE; else
// ${XDG_RUNTIME_DIR}/containers/auth.json (/run/containers/$UID/auth.json without
// XDG_RUNTIME_DIR), ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
// ${DOCKER_CONFIG:-~/.docker}/config.json and ~/.dockercfg, the first file with credentials for
// the image winning. Within a file: a credHelpers entry for the registry asks that
// docker-credential helper; else the most specific "auths" key wins (host/ns/repo, then host/ns,
// then host); else a credsStore helper is asked.
//
// Writing (login, logout) edits one file, the first of that order (--authfile,
// $REGISTRY_AUTH_FILE, the runtime one), keeping whatever else it holds: 0600, in a 0700
// directory, replaced atomically.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "transports/util/result.h"

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
// Runs `docker-credential-<helper> <action>` with `input` on stdin and returns its stdout (see
// credential_helper.h); a parameter so that tests can stand in for a helper.
using HelperRunner = std::function<Result<std::string>(
    const std::string& helper, const std::string& action, const std::string& input)>;

Result<std::optional<Credentials>> LookupCredentials(const std::string& authfile,
                                                     std::string_view registry,
                                                     std::string_view repository);
Result<std::optional<Credentials>> LookupCredentials(const std::string& authfile,
                                                     std::string_view registry,
                                                     std::string_view repository,
                                                     const HelperRunner& helper);

// The credential helper one file names for `registry`: its credHelpers entry, else its
// credsStore ("" when neither). `from_store` tells which.
struct HelperChoice {
  std::string helper;
  bool from_store = false;
};
HelperChoice CredentialHelperIn(std::string_view file_contents, std::string_view registry);

// The registry hosts the search path's files hold credentials for ("auths" and credHelpers
// keys), for the mount's root listing. Unreadable files are skipped.
std::set<std::string> RegistriesWithCredentials(const std::string& authfile);

// A cheap fingerprint of the search path's files (inode, size, mtime of each): it changes when
// any of them is written, replaced, created or removed.
std::string AuthFilesStamp(const std::string& authfile);

// ---- Writing -------------------------------------------------------------------------------

// The file login writes: --authfile, else $REGISTRY_AUTH_FILE, else
// ${XDG_RUNTIME_DIR}/containers/auth.json, else /run/containers/$UID/auth.json.
std::string AuthFileWritePath(const std::string& authfile);

// "https://Host:5000/ns/" → "host:5000/ns": the key login and logout use. Docker Hub's names
// become "docker.io". EINVAL when the host part is not a registry host.
Result<std::string> NormalizeLoginKey(std::string_view key);

// Stores `creds` under auths[key] in the file at `path` (created with its directory if need
// be), or in the credential helper the file's credHelpers names for the key's registry.
Status StoreCredentials(const std::string& path, const std::string& key, const Credentials& creds,
                        const HelperRunner& helper);

// Removes auths[key] (and the credHelpers helper's copy). false when there was nothing to
// remove.
Result<bool> RemoveCredentials(const std::string& path, const std::string& key,
                               const HelperRunner& helper);

// Empties "auths" of the file (keeping its other contents); a missing file is fine.
Status RemoveAllCredentials(const std::string& path);

// The credentials stored under exactly `key` in the file at `path` (no search), for
// `login --get-login` and for checking existing credentials.
Result<std::optional<Credentials>> CredentialsForKey(const std::string& path,
                                                     const std::string& key,
                                                     const HelperRunner& helper);

}  // namespace regfs
