#include "transports/http/tls_config.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr int64_t kMaxPemFile = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::vector<X509Ptr>> ReadCertificates(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileBounded(path, kMaxPemFile));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return MakeError(ENOMEM, "reading " + path + ": out of memory");
  std::vector<X509Ptr> out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the read that ended the loop
  if (out.empty()) return MakeError(EINVAL, path + " holds no PEM certificate");
  return out;
}

Result<EvpPkeyPtr> ReadPrivateKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileBounded(path, kMaxPemFile));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return MakeError(ENOMEM, "reading " + path + ": out of memory");
  // No passphrase callback: an encrypted key fails here instead of prompting.
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  if (!key) return MakeError(EINVAL, path + " holds no unencrypted PEM private key");
  return key;
}

}  // namespace

Result<std::shared_ptr<const TlsConfig>> TlsConfig::LoadDir(const std::string& dir) {
  auto config = std::make_shared<TlsConfig>();
  config->dir_ = dir;
  auto listed = ListDir(dir);
  if (!listed.ok()) {
    int e = listed.error().errnum;
    return MakeError(e, "reading certificate directory " + dir + ": " + std::strerror(e));
  }
  std::vector<std::string> names;  // sorted, hidden names left out
  for (std::string& name : *listed) {
    if (name[0] != '.') names.push_back(std::move(name));
  }
  auto has = [&](const std::string& name) {
    return std::binary_search(names.begin(), names.end(), name);
  };
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (EndsWith(name, ".crt")) {
      ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ReadCertificates(path));
      for (auto& c : certs) config->cas_.push_back(std::move(c));
    } else if (EndsWith(name, ".cert")) {
      std::string key_name = name.substr(0, name.size() - 5) + ".key";
      if (!has(key_name)) {
        return MakeError(EINVAL, "missing key " + key_name + " for client certificate " + path +
                                     " (CA certificates should use the extension .crt)");
      }
      if (config->client_cert_) continue;  // the first pair in name order is used
      ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ReadCertificates(path));
      ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadPrivateKey(dir + "/" + key_name));
      if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
        ERR_clear_error();
        return MakeError(EINVAL, dir + "/" + key_name + " is not the key of " + path);
      }
      config->client_cert_ = std::move(chain.front());
      for (size_t i = 1; i < chain.size(); ++i)
        config->client_chain_.push_back(std::move(chain[i]));
      config->client_key_ = std::move(key);
    } else if (EndsWith(name, ".key")) {
      std::string cert_name = name.substr(0, name.size() - 4) + ".cert";
      if (!has(cert_name)) {
        return MakeError(EINVAL, "missing client certificate " + cert_name + " for key " + path);
      }
    }
  }
  if (!config->cas_.empty()) {
    config->store_ = NewSystemTrustStore();
    if (!config->store_) return MakeError(ENOMEM, "building the trust store for " + dir);
    for (const X509Ptr& ca : config->cas_) {
      if (X509_STORE_add_cert(config->store_.get(), ca.get()) != 1) ERR_clear_error();  // dup
    }
  }
  return std::shared_ptr<const TlsConfig>(std::move(config));
}

bool TlsConfig::Apply(SSL_CTX* ctx) const {
  if (store_) {
    SSL_CTX_set1_cert_store(ctx, store_.get());
  } else if (!ApplySystemTrust(ctx)) {
    return false;
  }
  if (client_cert_) {
    if (SSL_CTX_use_certificate(ctx, client_cert_.get()) != 1) return false;
    for (const X509Ptr& c : client_chain_) {
      if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) return false;
    }
    if (SSL_CTX_use_PrivateKey(ctx, client_key_.get()) != 1) return false;
  }
  return true;
}

namespace {

// The system's CA bundle ($SSL_CERT_FILE, else OpenSSL's default file), parsed on first use
// only: at most once per process, and only by a verification that the hashed directory could
// not serve.
const std::vector<X509Ptr>& BundleCertificates() {
  static const std::vector<X509Ptr> certs = [] {
    const char* file = std::getenv(X509_get_default_cert_file_env());
    if (!file || !*file) file = X509_get_default_cert_file();
    auto read = ReadCertificates(file);
    return read.ok() ? std::move(read).value() : std::vector<X509Ptr>();
  }();
  return certs;
}

// An X509_LOOKUP that, asked for an issuer the store does not hold, adds the whole bundle to
// the store (once per store) and answers from it.
int LookUpInBundle(X509_LOOKUP* lookup, X509_LOOKUP_TYPE type, const X509_NAME* name,
                   X509_OBJECT* ret) {
  if (type != X509_LU_X509) return 0;
  X509_STORE* store = X509_LOOKUP_get_store(lookup);
  static std::mutex filling;  // stores are shared by connections verifying at once
  std::lock_guard<std::mutex> lock(filling);
  if (X509_LOOKUP_get_method_data(lookup) == nullptr) {
    X509_LOOKUP_set_method_data(lookup, store);  // marks this store as filled
    for (const X509Ptr& c : BundleCertificates()) {
      if (X509_STORE_add_cert(store, c.get()) != 1) ERR_clear_error();  // a duplicate
    }
  }
  for (const X509Ptr& c : BundleCertificates()) {
    if (X509_NAME_cmp(X509_get_subject_name(c.get()), name) == 0) {
      // A lookup lends `ret` its certificate: X509_STORE_CTX_get_by_subject takes the
      // reference the caller gets itself, as for OpenSSL's own lookups (by_dir), and never
      // frees `ret`. set1 takes one more: it is given back, `certs` keeps the certificate.
      if (X509_OBJECT_set1_X509(ret, c.get()) != 1) return 0;
      X509_free(c.get());
      return 1;
    }
  }
  return 0;
}

X509_LOOKUP_METHOD* BundleLookupMethod() {
  static X509_LOOKUP_METHOD* const method = [] {
    X509_LOOKUP_METHOD* m = X509_LOOKUP_meth_new("regfs: the CA bundle, on demand");
    if (m) X509_LOOKUP_meth_set_get_by_subject(m, LookUpInBundle);
    return m;
  }();
  return method;
}

}  // namespace

X509StorePtr NewSystemTrustStore() {
  X509StorePtr store(X509_STORE_new());
  if (!store) return nullptr;
  X509_STORE_set_flags(store.get(), X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
  const char* dir = std::getenv(X509_get_default_cert_dir_env());
  if (!dir || !*dir) dir = X509_get_default_cert_dir();
  // The hashed directory first: it reads one small file per issuer looked up.
  if (IsDirectory(dir)) {
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store.get(), X509_LOOKUP_hash_dir());
    if (!lookup || X509_LOOKUP_add_dir(lookup, dir, X509_FILETYPE_PEM) != 1) ERR_clear_error();
  }
  if (X509_LOOKUP_METHOD* bundle = BundleLookupMethod()) {
    if (!X509_STORE_add_lookup(store.get(), bundle)) ERR_clear_error();
  }
  return store;
}

bool ApplySystemTrust(SSL_CTX* ctx) {
  static const X509StorePtr system = NewSystemTrustStore();
  if (!system) return false;
  SSL_CTX_set1_cert_store(ctx, system.get());
  return true;
}

std::vector<std::string> CertsDRoots() {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("REGFS_CERTS_D"); env && *env) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      size_t colon = list.find(':', start);
      if (colon == std::string::npos) colon = list.size();
      if (colon > start) roots.push_back(list.substr(start, colon - start));
      start = colon + 1;
    }
    return roots;
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    roots.push_back(std::string(home) + "/.config/containers/certs.d");
  }
  roots.push_back("/etc/containers/certs.d");
  roots.push_back("/etc/docker/certs.d");
  return roots;
}

std::string CertDirFor(const std::string& cert_dir, const std::string& registry) {
  if (!cert_dir.empty()) return cert_dir;
  for (const std::string& root : CertsDRoots()) {
    std::string dir = root + "/" + registry;
    if (IsDirectory(dir)) return dir;
  }
  return {};
}

Result<std::shared_ptr<const TlsConfig>> LoadTlsConfigFor(const std::string& cert_dir,
                                                          const std::string& registry) {
  std::string dir = CertDirFor(cert_dir, registry);
  if (dir.empty()) return std::shared_ptr<const TlsConfig>();
  return TlsConfig::LoadDir(dir);
}

}  // namespace regfs
