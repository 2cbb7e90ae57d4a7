#include "transports/signature/simple_signing.h"

#include <fcntl.h>
#include <gpgme.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "transports/types/image_reference.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr char kCreator[] = "regfs 0.1";

std::string GpgmeText(gpgme_error_t err) {
  char buf[256];
  gpgme_strerror_r(err, buf, sizeof buf);
  return buf;
}

Error GpgmeError(const std::string& what, gpgme_error_t err, int errnum = EIO) {
  return MakeError(errnum, what + ": " + GpgmeText(err));
}

Status InitGpgme() {
  static std::once_flag once;
  static gpgme_error_t engine = 0;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    engine = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
  });
  if (engine != 0) return GpgmeError("GnuPG is not usable (is gpg installed?)", engine);
  return Ok();
}

struct KeyUnref {
  void operator()(gpgme_key_t k) const { gpgme_key_unref(k); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, KeyUnref>;

// A gpgme data object: over bytes it reads, or growing in memory as gpgme writes.
class GpgmeData {
 public:
  GpgmeData(const GpgmeData&) = delete;
  GpgmeData& operator=(const GpgmeData&) = delete;
  ~GpgmeData() {
    if (data_) gpgme_data_release(data_);
  }

  static Result<GpgmeData> Of(std::string_view bytes) {
    GpgmeData d;
    // copy=1: gpgme keeps its own copy, so `bytes` need not outlive it.
    gpgme_error_t err = gpgme_data_new_from_mem(&d.data_, bytes.data(), bytes.size(), 1);
    if (err != 0) return GpgmeError("gpgme data", err);
    return d;
  }
  static Result<GpgmeData> Empty() {
    GpgmeData d;
    gpgme_error_t err = gpgme_data_new(&d.data_);
    if (err != 0) return GpgmeError("gpgme data", err);
    return d;
  }
  GpgmeData(GpgmeData&& o) noexcept : data_(std::exchange(o.data_, nullptr)) {}

  gpgme_data_t get() const { return data_; }

  // The bytes written to an Empty() object; it is released.
  std::string Take() {
    size_t n = 0;
    char* mem = gpgme_data_release_and_get_mem(std::exchange(data_, nullptr), &n);
    std::string out(mem ? mem : "", mem ? n : 0);
    gpgme_free(mem);
    return out;
  }

 private:
  GpgmeData() = default;
  gpgme_data_t data_ = nullptr;
};

// An OpenPGP gpgme context, binary and not text mode, in `home` (empty: the user's).
class GpgmeContext {
 public:
  GpgmeContext(const GpgmeContext&) = delete;
  GpgmeContext& operator=(const GpgmeContext&) = delete;
  GpgmeContext(GpgmeContext&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
  ~GpgmeContext() {
    if (ctx_) gpgme_release(ctx_);
  }

  static Result<GpgmeContext> New(const std::string& home) {
    RETURN_IF_ERROR(InitGpgme());
    GpgmeContext c;
    gpgme_error_t err = gpgme_new(&c.ctx_);
    if (err != 0) return GpgmeError("initializing GPG", err);
    err = gpgme_set_protocol(c.ctx_, GPGME_PROTOCOL_OpenPGP);
    if (err == 0 && !home.empty()) {
      err = gpgme_ctx_set_engine_info(c.ctx_, GPGME_PROTOCOL_OpenPGP, nullptr, home.c_str());
    }
    if (err != 0) return GpgmeError("initializing GPG", err);
    gpgme_set_armor(c.ctx_, 0);
    gpgme_set_textmode(c.ctx_, 0);
    return c;
  }

  gpgme_ctx_t get() const { return ctx_; }

 private:
  GpgmeContext() = default;
  gpgme_ctx_t ctx_ = nullptr;
};

// Stops the daemons (gpg-agent) gpg may have started for `home`, as `gpgconf --kill all` does,
// so that none outlives its removed home.
void KillDaemons(const std::string& home) {
  const char* gpgconf = gpgme_get_dirinfo("gpgconf-name");
  if (!gpgconf || !*gpgconf) gpgconf = "gpgconf";
  posix_spawn_file_actions_t actions;
  if (posix_spawn_file_actions_init(&actions) != 0) return;
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null",
                                     fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0);
  }
  std::string arg0 = "gpgconf", arg1 = "--homedir", arg3 = "--kill", arg4 = "all";
  std::string arg2 = home;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), arg3.data(), arg4.data(), nullptr};
  pid_t pid = -1;
  if (posix_spawnp(&pid, gpgconf, &actions, nullptr, argv, environ) == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  posix_spawn_file_actions_destroy(&actions);
}

// A GnuPG home of our own, removed (after stopping any agent gpg started there) when the
// object goes.
class TempGnupgHome {
 public:
  TempGnupgHome(const TempGnupgHome&) = delete;
  TempGnupgHome& operator=(const TempGnupgHome&) = delete;
  TempGnupgHome(TempGnupgHome&& o) noexcept : path_(std::exchange(o.path_, std::string())) {}
  ~TempGnupgHome() {
    if (path_.empty()) return;
    KillDaemons(path_);
    (void)RemoveAll(path_);
  }

  static Result<TempGnupgHome> Make() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/regfs-gpg-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) return SysError("creating", pattern);
    TempGnupgHome h;
    h.path_ = pattern;
    return h;
  }
  const std::string& path() const { return path_; }

 private:
  TempGnupgHome() = default;
  std::string path_;
};

gpgme_error_t WritePassphrase(void* hook, const char* /*uid_hint*/, const char* /*passphrase_info*/,
                              int prev_was_bad, int fd) {
  if (prev_was_bad) return gpgme_error(GPG_ERR_BAD_PASSPHRASE);
  std::string line = *static_cast<const std::string*>(hook) + "\n";
  if (gpgme_io_writen(fd, line.data(), line.size()) != 0) {
    return gpgme_error_from_errno(errno);
  }
  return 0;
}

// The signing payload, keys sorted as Go's encoding/json writes a map.
std::string Payload(const std::string& manifest_digest, const std::string& docker_reference) {
  nlohmann::json doc = {
      {"critical",
       {{"identity", {{"docker-reference", docker_reference}}},
        {"image", {{"docker-manifest-digest", manifest_digest}}},
        {"type", kSimpleSigningType}}},
      {"optional",
       {{"creator", kCreator}, {"timestamp", static_cast<int64_t>(std::time(nullptr))}}}};
  return doc.dump();
}

Error InvalidSignature(const std::string& message) {
  return MakeError(EINVAL, "invalid signature: " + message);
}

// The fields of a JSON object, each exactly once; `required` must all be there and, unless
// `others_allowed`, nothing else.
Status ExactFields(const nlohmann::json& obj, const char* what,
                   std::initializer_list<const char*> required, bool others_allowed = false) {
  if (!obj.is_object()) return InvalidSignature(std::string(what) + " is not a JSON object");
  for (const char* key : required) {
    if (!obj.contains(key)) {
      return InvalidSignature(std::string("key \"") + key + "\" missing in " + what);
    }
  }
  if (!others_allowed) {
    for (const auto& item : obj.items()) {
      const std::string& key = item.key();
      if (std::find_if(required.begin(), required.end(), [&](const char* k) { return key == k; }) ==
          required.end()) {
        return InvalidSignature("unknown key \"" + key + "\" in " + what);
      }
    }
  }
  return Ok();
}

Result<std::string> StringField(const nlohmann::json& obj, const char* key, const char* what) {
  const auto& v = obj.at(key);
  if (!v.is_string()) {
    return InvalidSignature(std::string(what) + "." + key + " is not a string");
  }
  return v.get<std::string>();
}

// The plaintext, as strictly as containers/image's untrustedSignature.strictUnmarshalJSON:
// no duplicate keys anywhere, exactly the critical fields, optional creator and an integer
// timestamp.
Result<SignedImage> ParsePayload(std::string_view text) {
  bool duplicate = false;
  std::string duplicate_key;
  std::vector<std::set<std::string>> keys;
  nlohmann::json::parser_callback_t cb = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                                             nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      keys.emplace_back();
    } else if (event == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == E::key && !keys.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!keys.back().insert(key).second && !duplicate) {
        duplicate = true;
        duplicate_key = key;
      }
    }
    return true;
  };
  nlohmann::json doc = nlohmann::json::parse(text, cb, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidSignature("the signed payload is not JSON");
  if (duplicate) return InvalidSignature("duplicate key \"" + duplicate_key + "\"");
  RETURN_IF_ERROR(ExactFields(doc, "the signature", {"critical", "optional"}));
  const nlohmann::json& optional = doc["optional"];
  RETURN_IF_ERROR(ExactFields(optional, "optional", {}, /*others_allowed=*/true));
  if (optional.contains("creator") && !optional["creator"].is_string()) {
    return InvalidSignature("optional.creator is not a string");
  }
  if (optional.contains("timestamp")) {
    const auto& ts = optional["timestamp"];
    if (!ts.is_number()) return InvalidSignature("optional.timestamp is not a number");
    if (ts.is_number_float()) {
      double d = ts.get<double>();
      if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9.2e18) {
        return InvalidSignature("Field optional.timestamp is not an integer");
      }
    }
  }
  const nlohmann::json& critical = doc["critical"];
  RETURN_IF_ERROR(ExactFields(critical, "critical", {"type", "image", "identity"}));
  ASSIGN_OR_RETURN(std::string type, StringField(critical, "type", "critical"));
  if (type != kSimpleSigningType) return InvalidSignature("Unrecognized signature type " + type);
  const nlohmann::json& image = critical["image"];
  RETURN_IF_ERROR(ExactFields(image, "critical.image", {"docker-manifest-digest"}));
  SignedImage claims;
  ASSIGN_OR_RETURN(claims.manifest_digest,
                   StringField(image, "docker-manifest-digest", "critical.image"));
  if (Status s = ValidateDigest(claims.manifest_digest); !s.ok()) {
    return InvalidSignature("invalid docker-manifest-digest value \"" + claims.manifest_digest +
                            "\": " + s.error().message);
  }
  const nlohmann::json& identity = critical["identity"];
  RETURN_IF_ERROR(ExactFields(identity, "critical.identity", {"docker-reference"}));
  ASSIGN_OR_RETURN(claims.docker_reference,
                   StringField(identity, "docker-reference", "critical.identity"));
  return claims;
}

// Why gpgme's verdict on one signature is not "valid" (key trust aside, which is ours to
// decide), or "" when it is.
std::string SignatureProblem(const gpgme_signature_t sig) {
  const char* fpr = sig->fpr ? sig->fpr : "(unknown)";
  switch (gpgme_err_code(sig->status)) {
    case GPG_ERR_NO_ERROR:
      break;
    case GPG_ERR_NO_PUBKEY:
      return std::string("signed by an unknown key ") + fpr;
    case GPG_ERR_BAD_SIGNATURE:
      return std::string("bad signature by key ") + fpr;
    case GPG_ERR_KEY_EXPIRED:
      return std::string("the signing key ") + fpr + " has expired";
    case GPG_ERR_SIG_EXPIRED:
      return "the signature has expired";
    case GPG_ERR_CERT_REVOKED:
      return std::string("the signing key ") + fpr + " has been revoked";
    default:
      return std::string("signature by key ") + fpr + ": " + GpgmeText(sig->status);
  }
  if (sig->validity == GPGME_VALIDITY_NEVER) {
    return std::string("the signing key ") + fpr + " is never valid";
  }
  if (sig->validity_reason != 0) {
    return std::string("signature by key ") + fpr + ": " + GpgmeText(sig->validity_reason);
  }
  if (sig->wrong_key_usage) return std::string("key ") + fpr + " is not meant for signing";
  return "";
}

struct Verified {
  std::string plaintext;
  std::string fingerprint;          // of the key that signed (maybe a subkey)
  std::string primary_fingerprint;  // of its primary key, when known
};

// Verifies the OpenPGP message `blob` in `ctx`; EACCES when it is not a good signature.
Result<Verified> VerifyIn(const GpgmeContext& ctx, std::string_view blob) {
  if (blob.empty()) return MakeError(EINVAL, "empty signature");
  if (static_cast<int64_t>(blob.size()) > kMaxSignatureSize) {
    return MakeError(EFBIG,
                     "signature over the " + std::to_string(kMaxSignatureSize) + "-byte limit");
  }
  ASSIGN_OR_RETURN(GpgmeData sig, GpgmeData::Of(blob));
  ASSIGN_OR_RETURN(GpgmeData plain, GpgmeData::Empty());
  gpgme_error_t err = gpgme_op_verify(ctx.get(), sig.get(), nullptr, plain.get());
  if (err != 0) {
    return GpgmeError("not a valid OpenPGP signature", err,
                      gpgme_err_code(err) == GPG_ERR_NO_DATA ? EINVAL : EACCES);
  }
  gpgme_verify_result_t result = gpgme_op_verify_result(ctx.get());
  int count = 0;
  for (gpgme_signature_t s = result ? result->signatures : nullptr; s; s = s->next) ++count;
  if (count != 1) {
    return MakeError(EACCES, "unexpected GPG signature count " + std::to_string(count));
  }
  gpgme_signature_t s = result->signatures;
  if (std::string problem = SignatureProblem(s); !problem.empty()) {
    return MakeError(EACCES, problem);
  }
  Verified out;
  out.fingerprint = s->fpr ? s->fpr : "";
  out.plaintext = plain.Take();
  gpgme_key_t key = nullptr;
  if (gpgme_get_key(ctx.get(), out.fingerprint.c_str(), &key, 0) == 0 && key) {
    KeyPtr owned(key);
    if (key->subkeys && key->subkeys->fpr) out.primary_fingerprint = key->subkeys->fpr;
  }
  return out;
}

// Accepts `v` if its key (or that key's primary key) is one of `accepted`; returns the
// identity that matched.
Result<std::string> AcceptedKey(const Verified& v, const std::vector<std::string>& accepted) {
  auto has = [&](const std::string& f) {
    return !f.empty() && std::find(accepted.begin(), accepted.end(), f) != accepted.end();
  };
  if (has(v.fingerprint)) return v.fingerprint;
  if (has(v.primary_fingerprint)) return v.primary_fingerprint;
  if (!v.primary_fingerprint.empty() && v.primary_fingerprint != v.fingerprint) {
    return MakeError(EACCES, "signature by key " + v.fingerprint + " of " + v.primary_fingerprint +
                                 " is not accepted");
  }
  return MakeError(EACCES, "signature by key " + v.fingerprint + " is not accepted");
}

class GpgSigner : public Signer {
 public:
  GpgSigner(std::string fingerprint, std::string passphrase)
      : fingerprint_(std::move(fingerprint)), passphrase_(std::move(passphrase)) {}
  std::string Describe() const override { return "GPG key " + fingerprint_; }
  Signature::Format format() const override { return Signature::Format::kSimpleSigning; }
  Result<Signature> Sign(const std::string& manifest_digest,
                         const std::string& docker_reference) override {
    ASSIGN_OR_RETURN(std::string blob, SignSimpleSigning(manifest_digest, docker_reference,
                                                         fingerprint_, passphrase_));
    Signature sig;
    sig.format = Signature::Format::kSimpleSigning;
    sig.simple_signing = std::move(blob);
    return sig;
  }

 private:
  std::string fingerprint_;
  std::string passphrase_;
};

}  // namespace

Result<SignedImage> ParseSimpleSigningPayload(std::string_view plaintext) {
  return ParsePayload(plaintext);
}

Result<std::string> SignSimpleSigning(const std::string& manifest_digest,
                                      const std::string& docker_reference,
                                      const std::string& fingerprint,
                                      const std::string& passphrase) {
  if (manifest_digest.empty() || docker_reference.empty()) {
    return MakeError(EINVAL, "unexpected empty signature content");
  }
  // gpg reads the passphrase as one line.
  if (passphrase.find('\n') != std::string::npos) {
    return MakeError(EINVAL, "invalid passphrase: must not contain a line break");
  }
  ASSIGN_OR_RETURN(GpgmeContext ctx, GpgmeContext::New(""));
  gpgme_key_t raw_key = nullptr;
  gpgme_error_t err = gpgme_get_key(ctx.get(), fingerprint.c_str(), &raw_key, /*secret=*/1);
  KeyPtr key(raw_key);
  if (err != 0 || !key) {
    int code = gpgme_err_code(err);
    if (code == GPG_ERR_EOF || code == GPG_ERR_NO_ERROR || code == GPG_ERR_INV_VALUE) {
      return MakeError(ENOENT, "no secret key " + fingerprint + " in the GnuPG keyring");
    }
    if (code == GPG_ERR_AMBIGUOUS_NAME) {
      return MakeError(EINVAL, "key " + fingerprint + " is ambiguous: give its fingerprint");
    }
    return GpgmeError("looking up key " + fingerprint, err);
  }
  if (!passphrase.empty()) {
    // Loopback: gpg-agent asks us, not a pinentry.
    gpgme_set_passphrase_cb(ctx.get(), WritePassphrase, const_cast<std::string*>(&passphrase));
    err = gpgme_set_pinentry_mode(ctx.get(), GPGME_PINENTRY_MODE_LOOPBACK);
    if (err != 0) return GpgmeError("setting gpgme pinentry mode", err);
  }
  gpgme_signers_clear(ctx.get());
  err = gpgme_signers_add(ctx.get(), key.get());
  if (err != 0) return GpgmeError("signing with key " + fingerprint, err);
  const std::string payload = Payload(manifest_digest, docker_reference);
  ASSIGN_OR_RETURN(GpgmeData plain, GpgmeData::Of(payload));
  ASSIGN_OR_RETURN(GpgmeData sig, GpgmeData::Empty());
  err = gpgme_op_sign(ctx.get(), plain.get(), sig.get(), GPGME_SIG_MODE_NORMAL);
  if (err != 0) {
    int code = gpgme_err_code(err);
    int errnum = code == GPG_ERR_BAD_PASSPHRASE || code == GPG_ERR_NO_PASSPHRASE ? EACCES : EIO;
    return GpgmeError("signing with key " + fingerprint, err, errnum);
  }
  std::string out = sig.Take();
  if (out.empty()) return MakeError(EIO, "signing with key " + fingerprint + ": no signature");
  return out;
}

std::unique_ptr<Signer> NewGpgSigner(std::string fingerprint, std::string passphrase) {
  return std::make_unique<GpgSigner>(std::move(fingerprint), std::move(passphrase));
}

Result<SimpleSigningVerified> VerifySimpleSigning(std::string_view blob,
                                                  const std::vector<std::string>& keyrings) {
  // Declared first, so removed last: after the context that uses it.
  ASSIGN_OR_RETURN(TempGnupgHome home, TempGnupgHome::Make());
  ASSIGN_OR_RETURN(GpgmeContext ctx, GpgmeContext::New(home.path()));
  std::vector<std::string> imported;
  for (const std::string& keyring : keyrings) {
    ASSIGN_OR_RETURN(GpgmeData data, GpgmeData::Of(keyring));
    gpgme_error_t err = gpgme_op_import(ctx.get(), data.get());
    if (err != 0) return GpgmeError("importing public keys", err, EINVAL);
    gpgme_import_result_t r = gpgme_op_import_result(ctx.get());
    for (gpgme_import_status_t s = r ? r->imports : nullptr; s; s = s->next) {
      if (s->result == 0 && s->fpr) imported.push_back(s->fpr);
    }
  }
  if (imported.empty()) return MakeError(EINVAL, "no public keys in the given keyrings");
  ASSIGN_OR_RETURN(Verified v, VerifyIn(ctx, blob));
  ASSIGN_OR_RETURN(std::string key, AcceptedKey(v, imported));
  ASSIGN_OR_RETURN(SignedImage claims, ParsePayload(v.plaintext));
  return SimpleSigningVerified{std::move(claims), std::move(key)};
}

Result<SimpleSigningVerified> VerifySimpleSigningWithUserKeyring(
    std::string_view blob, const std::vector<std::string>& fingerprints) {
  ASSIGN_OR_RETURN(GpgmeContext ctx, GpgmeContext::New(""));
  ASSIGN_OR_RETURN(Verified v, VerifyIn(ctx, blob));
  ASSIGN_OR_RETURN(std::string key, AcceptedKey(v, fingerprints));
  ASSIGN_OR_RETURN(SignedImage claims, ParsePayload(v.plaintext));
  return SimpleSigningVerified{std::move(claims), std::move(key)};
}

Status CheckSignedImage(const SignedImage& claims, std::string_view manifest,
                        const std::string& expected_reference) {
  auto expected = ParseDockerReference(expected_reference);
  if (!expected.ok()) return Annotate(std::move(expected).error(), expected_reference);
  if (DigestOf(manifest) != claims.manifest_digest) {
    return MakeError(
        EACCES, "Signature for docker digest \"" + claims.manifest_digest + "\" does not match");
  }
  auto signed_ref = ParseDockerReference(claims.docker_reference);
  if (!signed_ref.ok()) {
    return MakeError(EACCES,
                     "Invalid docker reference \"" + claims.docker_reference + "\" in signature");
  }
  auto normalized = [](const DockerReference& r) {
    std::string s = r.Name();
    if (!r.tag.empty() && !r.tag_defaulted) s += ":" + r.tag;
    if (!r.digest.empty()) s += "@" + r.digest;
    return s;
  };
  if (normalized(*signed_ref) != normalized(*expected)) {
    return MakeError(EACCES, "Docker reference \"" + claims.docker_reference +
                                 "\" does not match \"" + expected_reference + "\"");
  }
  return Ok();
}

}  // namespace regfs
