// The passphrase of a private key, for every command that reads or writes one.
#pragma once

#include <string>
#include <vector>

#include "tools/cli.h"
#include "transports/util/result.h"

namespace regfs::cli {

// --passphrase-file.
void AddPassphraseFlag(std::vector<Flag>* flags);

// The passphrase, from the first source there is: --`flag` (its first line, without
// the line break), $COSIGN_PASSWORD, or a prompt without echo when standard input is a
// terminal (asked twice and compared when `confirm`). EINVAL when there is none of these.
Result<std::string> ReadPassphrase(const Args& args, bool confirm,
                                   const std::string& flag = "passphrase-file");

}  // namespace regfs::cli
