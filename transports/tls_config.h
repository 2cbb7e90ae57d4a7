// TLS material for talking to one registry, as containers-certs.d(5) lays it out: a directory
// whose *.crt files are CA certificates trusted in addition to the system's, and whose
// *.cert / *.key files are client certificate / private key pairs (same base name).
//
// Which directory: --cert-dir when given (used as is, nothing else); otherwise the first of
// ROOT/HOST[:PORT] that exists, for ROOT in ~/.config/containers/certs.d,
// /etc/containers/certs.d, /etc/docker/certs.d — or, when $REGFS_CERTS_D is set, in its
// colon-separated list of roots instead.
//
// A loaded TlsConfig is immutable: share it between threads and requests.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "transports/result.h"

namespace regfs {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

class TlsConfig {
 public:
  // Loads the certs.d directory `dir`. Errors name the file: unreadable, not PEM, a .cert
  // without its .key or the other way round, a key that does not match its certificate.
  static Result<std::shared_ptr<const TlsConfig>> LoadDir(const std::string& dir);

  // Installs the material into an SSL_CTX before its handshake: the system's trust store plus
  // the extra CAs (in a store of this context's own, never a shared one), and the client
  // certificate. Returns false on failure.
  bool Apply(SSL_CTX* ctx) const;

  const std::string& dir() const { return dir_; }
  size_t ca_count() const { return cas_.size(); }
  bool has_client_certificate() const { return client_cert_ != nullptr; }

 private:
  std::string dir_;
  std::vector<X509Ptr> cas_;
  X509Ptr client_cert_;
  std::vector<X509Ptr> client_chain_;
  EvpPkeyPtr client_key_;
};

// The certs.d roots searched for a host: $REGFS_CERTS_D's, or the containers tools' defaults.
std::vector<std::string> CertsDRoots();

// The directory to load for `registry` ("host[:port]"): `cert_dir` when not empty, else the
// first existing ROOT/registry, else "" (no extra material).
std::string CertDirFor(const std::string& cert_dir, const std::string& registry);

// Loads the material for `registry`; nullptr when there is none to load.
Result<std::shared_ptr<const TlsConfig>> LoadTlsConfigFor(const std::string& cert_dir,
                                                          const std::string& registry);

}  // namespace regfs
