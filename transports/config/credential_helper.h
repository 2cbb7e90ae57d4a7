// The docker-credential-helpers protocol: `docker-credential-NAME get|store|erase`, found on
// $PATH, talking JSON on stdin/stdout. `get` reads the server URL and answers
// {"ServerURL", "Username", "Secret"}; a Username of "<token>" means Secret is an identity
// (OAuth2 refresh) token. A helper that knows nothing of the server says "credentials not
// found" and exits non-zero: that is no credentials, not an error.
//
// Each call runs the helper once, with a 30 s limit and its output bounded. Helpers' output is
// never logged: it may hold secrets. Thread-safe (no shared state).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "transports/config/auth_file.h"
#include "transports/util/result.h"

namespace regfs {

// The real HelperRunner (auth_file.h): `docker-credential-<helper> <action>` from $PATH with
// `input` on stdin; returns its stdout. ENOENT when it can't be run, ENODATA when it ran and
// failed (the message carries its first line of output).
Result<std::string> RunCredentialHelper(const std::string& helper, const std::string& action,
                                        const std::string& input);

// `get` for `server`; nullopt when the helper has no credentials for it.
Result<std::optional<Credentials>> CredentialHelperGet(const HelperRunner& run,
                                                       const std::string& helper,
                                                       const std::string& server);
Status CredentialHelperStore(const HelperRunner& run, const std::string& helper,
                             const std::string& server, const Credentials& creds);
Status CredentialHelperErase(const HelperRunner& run, const std::string& helper,
                             const std::string& server);

}  // namespace regfs
