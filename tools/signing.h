// Signing and signature-policy flags, shared by the commands that write or check images
// (copy, sync, sign, verify).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "transports/config/registries_d.h"
#include "transports/manifest/manifest.h"
#include "transports/signature/policy.h"
#include "transports/signature/policy_check.h"
#include "transports/types/signature.h"
#include "transports/util/result.h"

namespace regfs::cli {

// --sign-by, --sign-by-sigstore-private-key, --sign-passphrase-file, --sign-identity and
// --remove-signatures, as skopeo copy has them.
void AddSigningFlags(std::vector<Flag>* flags);

// --policy, --insecure-policy and --registries.d (skopeo's global flags, which regfs also
// takes before the command name).
void AddPolicyFlags(std::vector<Flag>* flags);

// --registries.d alone, for commands that write signatures but read no policy.
void AddRegistriesDFlag(std::vector<Flag>* flags);

// The signers the flags ask for: a sigstore key (--`key_flag`, its passphrase from
// --`passphrase_flag`, $COSIGN_PASSWORD or a prompt) and a GPG key (--sign-by). Empty when
// none is asked for.
Result<std::vector<std::unique_ptr<Signer>>> SignersFrom(
    const Args& args, const std::string& key_flag = "sign-by-sigstore-private-key",
    const std::string& passphrase_flag = "sign-passphrase-file");

// The identity signatures claim: --sign-identity (a full docker reference), else the
// destination's docker reference; empty when there is neither.
Result<std::string> SignIdentityFrom(const Args& args, const ImageReference& dest);

// The registries.d configuration --registries.d names, else the default directories'.
Result<std::shared_ptr<const RegistriesD>> RegistriesDFrom(const Args& args);

// The policy the flags name: --insecure-policy accepts anything; else --policy FILE or the
// default files.
Result<std::shared_ptr<const Policy>> PolicyFrom(const Args& args);

}  // namespace regfs::cli
