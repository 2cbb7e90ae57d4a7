// TLS material for talking to one registry, as containers-certs.d(5) lays it out: a directory
// whose *.crt files are CA certificates trusted in addition to the system's, and whose
// *.cert / *.key files are client certificate / private key pairs (same base name).
//
// Which directory: --cert-dir when given (used as is, nothing else); otherwise the first of
// ROOT/HOST[:PORT] that exists, for ROOT in ~/.config/containers/certs.d,
// /etc/containers/certs.d, /etc/docker/certs.d — or, when $REGFS_CERTS_D is set, in its
// colon-separated list of roots instead.
//
// A loaded TlsConfig is immutable: share it between threads and requests. Its trust store is
// built once and shared by every connection that uses the config.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "transports/util/openssl_ptr.h"
#include "transports/util/result.h"

namespace regfs {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct X509StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

class TlsConfig {
 public:
  // Loads the certs.d directory `dir`. Errors name the file: unreadable, not PEM, a .cert
  // without its .key or the other way round, a key that does not match its certificate.
  static Result<std::shared_ptr<const TlsConfig>> LoadDir(const std::string& dir);

  // Installs the material into an SSL_CTX before its handshake: this config's trust store
  // (the system's CAs plus the extra ones, shared by this config's connections only) and the
  // client certificate. Returns false on failure.
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
  X509StorePtr store_;  // the system's CAs and cas_; null when cas_ is empty
};

// Installs the system's trust store into an SSL_CTX: one X509 store per process that looks
// CAs up on demand in the hashed directory (/etc/ssl/certs, or $SSL_CERT_DIR) and keeps those
// it loaded, so no connection parses the whole CA bundle. $SSL_CERT_FILE, when set, is loaded
// (once). Returns false on failure.
bool ApplySystemTrust(SSL_CTX* ctx);

// A new X509 store holding the system's CAs as ApplySystemTrust's does; null on failure.
X509StorePtr NewSystemTrustStore();

// The certs.d roots searched for a host: $REGFS_CERTS_D's, or the containers tools' defaults.
std::vector<std::string> CertsDRoots();

// The directory to load for `registry` ("host[:port]"): `cert_dir` when not empty, else the
// first existing ROOT/registry, else "" (no extra material).
std::string CertDirFor(const std::string& cert_dir, const std::string& registry);

// Loads the material for `registry`; nullptr when there is none to load.
Result<std::shared_ptr<const TlsConfig>> LoadTlsConfigFor(const std::string& cert_dir,
                                                          const std::string& registry);

}  // namespace regfs
