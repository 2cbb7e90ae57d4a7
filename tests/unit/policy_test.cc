#include "transports/signature/policy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/testing/shell.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/signature/sigstore.h"
#include "transports/signature/sigstore_key.h"
#include "transports/signature/simple_signing.h"
#include "transports/util/base64.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

const std::string kFixtures = std::string(REGFS_FIXTURES_DIR) + "/sigstore";

Policy MustParse(const std::string& json, const std::string& base_dir = "") {
  auto p = Policy::Parse(json, base_dir);
  EXPECT_TRUE(p.ok()) << json << "\n" << (p.ok() ? "" : p.error().message);
  if (!p.ok()) return Policy::InsecureAcceptAnything();
  return std::move(p).value();
}

// The error message of a policy that must not parse.
std::string ParseError(const std::string& json, int errnum = EINVAL) {
  auto p = Policy::Parse(json, "");
  EXPECT_FALSE(p.ok()) << json;
  if (p.ok()) return "";
  EXPECT_EQ(p.error().errnum, errnum) << p.error().message;
  return p.error().message;
}

// A policy whose default is the one requirement `req`.
std::string WithDefault(const std::string& req) { return R"({"default":[)" + req + "]}"; }

ImageReference Ref(const std::string& s) {
  auto r = ParseImageReference(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : ImageReference{};
}

std::string ReadFixture(const std::string& rel) {
  auto r = ReadFileBounded(kFixtures + "/" + rel, 1 << 20);
  EXPECT_TRUE(r.ok()) << rel;
  return r.ok() ? r.value() : "";
}

Signature SigFromFile(const std::string& rel) {
  auto s = SignatureFromBlob(ReadFixture(rel));
  EXPECT_TRUE(s.ok()) << rel << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? s.value() : Signature{};
}

// A fixture image read as a dir: source: manifest.json and signature-1, signature-2, ….
PolicyImage DirImage(const std::string& name, ImageReference ref = {}) {
  PolicyImage img;
  if (ref.path.empty() && ref.docker.registry.empty()) ref = Ref("dir:" + kFixtures + "/" + name);
  img.ref = ref;
  img.manifest = ReadFixture(name + "/manifest.json");
  for (int i = 1; PathExists(kFixtures + "/" + name + "/signature-" + std::to_string(i)); ++i) {
    img.signatures.push_back(SigFromFile(name + "/signature-" + std::to_string(i)));
  }
  return img;
}

std::string SigstoreKey(const std::string& key, const std::string& identity) {
  std::string s = R"({"type":"sigstoreSigned","keyPath":")" + kFixtures + "/" + key + "\"";
  if (!identity.empty()) s += R"(,"signedIdentity":)" + identity;
  return s + "}";
}

constexpr char kValidRepo[] = "192.168.64.2:5000/cosign-signed-single-sample";

using testing::TempDir;

// ---------------------------------------------------------------------------------------------
// Parsing.

TEST(PolicyParse, ContainersImageFixturePolicy) {
  // signature/fixtures/policy.json of containers/image, with its other transports.
  Policy p = MustParse(R"({
    "default": [{"type": "reject"}],
    "transports": {
      "dir": {"": [{"type": "insecureAcceptAnything"}]},
      "docker": {
        "example.com/playground": [{"type": "insecureAcceptAnything"}],
        "example.com/production": [
          {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/keys/employee-gpg-keyring"}],
        "example.com/hardened": [
          {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/keys/employee-gpg-keyring",
           "signedIdentity": {"type": "matchRepository"}},
          {"type": "signedBy", "keyType": "signedByGPGKeys",
           "keyPath": "/keys/public-key-signing-gpg-keyring",
           "signedIdentity": {"type": "matchExact"}},
          {"type": "signedBaseLayer", "baseLayerIdentity": {
             "type": "exactRepository", "dockerRepository": "registry.access.redhat.com/rhel7/rhel"}}],
        "example.com/hardened-x509": [
          {"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/keys/employee-cert-file",
           "signedIdentity": {"type": "matchRepository"}},
          {"type": "signedBy", "keyType": "signedByX509CAs",
           "keyPath": "/keys/public-key-signing-ca-file"}],
        "registry.redhat.io/beta": [
          {"type": "signedBy", "keyType": "GPGKeys",
           "keyPaths": ["/keys/RH-production-signing-key-gpg-keyring",
                        "/keys/RH-beta-signing-key-gpg-keyring"]}],
        "private-mirror:5000/vendor-mirror": [
          {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/keys/vendor-gpg-keyring",
           "signedIdentity": {"type": "remapIdentity", "prefix": "private-mirror:5000/vendor-mirror",
                              "signedPrefix": "vendor.example.com"}}],
        "*.access.redhat.com": [{"type": "signedBy", "keyType": "signedByGPGKeys",
           "keyPath": "/keys/RH-key-signing-key-gpg-keyring",
           "signedIdentity": {"type": "matchRepoDigestOrExact"}}],
        "bogus/key-data-example": [
          {"type": "signedBy", "keyType": "signedByGPGKeys", "keyData": "bm9uc2Vuc2U="}],
        "bogus/signed-identity-example": [
          {"type": "signedBaseLayer", "baseLayerIdentity": {"type": "exactReference",
             "dockerReference": "registry.access.redhat.com/rhel7/rhel:latest"}}],
        "example.com/sigstore/key-data-example": [
          {"type": "sigstoreSigned", "keyData": "bm9uc2Vuc2U="}],
        "example.com/sigstore/key-path-example": [
          {"type": "sigstoreSigned", "keyPath": "/keys/public-key",
           "signedIdentity": {"type": "matchRepository"}}]
      },
      "atomic": {"registry.example.com/ns": [{"type": "reject"}]},
      "containers-storage": {"[overlay@/var/lib/containers/storage]": [{"type": "reject"}]},
      "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
      "docker-archive": {"": [{"type": "reject"}]},
      "oci-archive": {"": [{"type": "reject"}]},
      "sif": {"": [{"type": "reject"}]},
      "tarball": {"": [{"type": "reject"}]},
      "oci": {"/var/images": [{"type": "insecureAcceptAnything"}]}
    }
  })");
  EXPECT_EQ(PolicyScopeFor(p, Ref("docker://example.com/playground/x:1")),
            R"(transports.docker["example.com/playground"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("docker://quay.io/x")), "default");
  EXPECT_TRUE(PolicyNeedsSignatures(p, Ref("docker://example.com/production/app")));
  EXPECT_FALSE(PolicyNeedsSignatures(p, Ref("docker://example.com/playground/app")));
  EXPECT_FALSE(PolicyNeedsSignatures(p, Ref("dir:/tmp/x")));
}

TEST(PolicyParse, StructuralErrorsNameTheField) {
  EXPECT_NE(ParseError("[]").find("top level: expected a JSON object"), std::string::npos);
  EXPECT_NE(ParseError("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ParseError(R"({"default":[{"type":"reject"}]} x)").find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(ParseError("{}").find("default policy is missing"), std::string::npos);
  EXPECT_NE(
      ParseError(R"({"default":[{"type":"reject"}],"extra":1})").find("unknown field \"extra\""),
      std::string::npos);
  EXPECT_NE(
      ParseError(R"({"default":[]})").find("default: the list of requirements must not be empty"),
      std::string::npos);
  EXPECT_NE(ParseError(R"({"default":{}})").find("default: expected an array"), std::string::npos);
  EXPECT_NE(ParseError(R"({"default":[{"type":"reject"}],"transports":[]})")
                .find("transports: expected a JSON object"),
            std::string::npos);
  EXPECT_NE(ParseError(R"({"default":[{"type":"reject"}],"transports":{"docker":[]}})")
                .find("transports.docker: expected a JSON object"),
            std::string::npos);
  std::string e =
      ParseError(R"({"default":[{"type":"reject"}],"transports":{"docker":{"a.com/b":[]}}})");
  EXPECT_NE(e.find(R"(transports.docker["a.com/b"]: the list of requirements must not be empty)"),
            std::string::npos)
      << e;
  EXPECT_NE(ParseError(WithDefault("1")).find("default[0]: expected a JSON object"),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault("{}")).find("default[0]: missing required field \"type\""),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":1})")).find("default[0].type: expected a string"),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"acceptAll"})"))
                .find("unknown policy requirement type \"acceptAll\""),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"reject","keyPath":"/k"})"))
                .find("default[0]: unknown field \"keyPath\""),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"insecureAcceptAnything","x":null})"))
                .find("unknown field \"x\""),
            std::string::npos);
}

TEST(PolicyParse, DuplicateKeysAreRefused) {
  // containers/image's paranoid decoder refuses duplicates at every level.
  std::string e = ParseError(R"({"default":[{"type":"reject"}],"default":[{"type":"reject"}]})");
  EXPECT_NE(e.find("duplicate key \"default\""), std::string::npos) << e;
  e = ParseError(R"({"default":[{"type":"reject"},{"type":"reject","type":"reject"}]})");
  EXPECT_NE(e.find("default[1]: duplicate key \"type\""), std::string::npos) << e;
  e = ParseError(
      R"({"default":[{"type":"reject"}],"transports":{"docker":{"a":[{"type":"reject"}],"a":[{"type":"reject"}]}}})");
  EXPECT_NE(e.find("transports.docker: duplicate key \"a\""), std::string::npos) << e;
}

TEST(PolicyParse, SignedByRules) {
  MustParse(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"})"));
  MustParse(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPaths":["/a","/b"]})"));
  MustParse(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyData":"bm9uc2Vuc2U="})"));
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyPath":"/k"})"))
                .find("missing required field \"keyType\""),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"PGP","keyPath":"/k"})"))
                .find("default[0].keyType: unrecognized keyType \"PGP\""),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys"})"))
                .find("exactly one of keyPath, keyPaths and keyData must be specified, none"),
            std::string::npos);
  EXPECT_NE(
      ParseError(
          WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"YQ=="})"))
          .find("more than one present"),
      std::string::npos);
  EXPECT_NE(
      ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyDatas":["YQ=="]})"))
          .find("unknown field \"keyDatas\""),
      std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPath":""})"))
                .find("default[0].keyPath: is empty"),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPath":7})"))
                .find("default[0].keyPath: expected a string"),
            std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPaths":[]})"))
                .find("default[0].keyPaths: contains no entries"),
            std::string::npos);
  EXPECT_NE(
      ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyPaths":["/a",1]})"))
          .find("default[0].keyPaths[1]: expected a string"),
      std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyData":"!!"})"))
                .find("default[0].keyData: not valid base64"),
            std::string::npos);
  EXPECT_NE(
      ParseError(
          WithDefault(
              R"({"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"nope"}})"))
          .find("default[0].signedIdentity.type: unknown signedIdentity type \"nope\""),
      std::string::npos);
}

TEST(PolicyParse, SigstoreSignedRules) {
  MustParse(WithDefault(R"({"type":"sigstoreSigned","keyPath":"/k.pub"})"));
  MustParse(WithDefault(R"({"type":"sigstoreSigned","keyPaths":["/a.pub","/b.pub"]})"));
  MustParse(WithDefault(R"({"type":"sigstoreSigned","keyData":"bm9uc2Vuc2U="})"));
  MustParse(WithDefault(R"({"type":"sigstoreSigned","keyDatas":["YQ==","Yg=="]})"));
  EXPECT_NE(ParseError(WithDefault(R"({"type":"sigstoreSigned"})"))
                .find("exactly one of keyPath, keyPaths, keyData and keyDatas must be specified"),
            std::string::npos);
  EXPECT_NE(
      ParseError(WithDefault(R"({"type":"sigstoreSigned","keyPath":"/a","keyDatas":["YQ=="]})"))
          .find("more than one present"),
      std::string::npos);
  EXPECT_NE(ParseError(WithDefault(R"({"type":"sigstoreSigned","keyDatas":[]})"))
                .find("keyDatas: contains no entries"),
            std::string::npos);
  EXPECT_NE(
      ParseError(WithDefault(R"({"type":"sigstoreSigned","keyPath":"/a","keyType":"GPGKeys"})"))
          .find("unknown field \"keyType\""),
      std::string::npos);
}

TEST(PolicyParse, FulcioRekorPkiAreRefusedAsNotSupported) {
  const char* cases[][2] = {
      {R"({"type":"sigstoreSigned","fulcio":{"caPath":"/ca","oidcIssuer":"https://x","subjectEmail":"a@b"},"rekorPublicKeyPath":"/r"})",
       "default[0].fulcio: \"fulcio\" is not supported"},
      {R"({"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyPath":"/r"})",
       "default[0].rekorPublicKeyPath: \"rekorPublicKeyPath\" is not supported"},
      {R"({"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyPaths":["/r"]})",
       "\"rekorPublicKeyPaths\" is not supported"},
      {R"({"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyData":"YQ=="})",
       "\"rekorPublicKeyData\" is not supported"},
      {R"({"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyDatas":["YQ=="]})",
       "\"rekorPublicKeyDatas\" is not supported"},
      {R"({"type":"sigstoreSigned","pki":{"caRootsPath":"/ca","subjectEmail":"a@b"}})",
       "default[0].pki: \"pki\" is not supported"},
  };
  for (const auto& c : cases) {
    std::string e = ParseError(WithDefault(c[0]), ENOTSUP);
    EXPECT_NE(e.find(c[1]), std::string::npos) << e;
  }
}

TEST(PolicyParse, SignedBaseLayerParses) {
  MustParse(WithDefault(
      R"({"type":"signedBaseLayer","baseLayerIdentity":{"type":"exactRepository","dockerRepository":"a.com/b"}})"));
  EXPECT_NE(ParseError(WithDefault(R"({"type":"signedBaseLayer"})"))
                .find("missing required field \"baseLayerIdentity\""),
            std::string::npos);
  EXPECT_NE(
      ParseError(
          WithDefault(
              R"({"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchExact"},"keyPath":"/k"})"))
          .find("unknown field \"keyPath\""),
      std::string::npos);
}

TEST(PolicyParse, EveryIdentityKindParsesAndValidates) {
  struct Case {
    const char* json;
    SignedIdentityRule::Kind kind;
  } ok[] = {
      {R"({"type":"matchExact"})", SignedIdentityRule::Kind::kMatchExact},
      {R"({"type":"matchRepoDigestOrExact"})", SignedIdentityRule::Kind::kMatchRepoDigestOrExact},
      {R"({"type":"matchRepository"})", SignedIdentityRule::Kind::kMatchRepository},
      {R"({"type":"exactReference","dockerReference":"busybox:latest"})",
       SignedIdentityRule::Kind::kExactReference},
      {R"({"type":"exactReference","dockerReference":"a.com/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})",
       SignedIdentityRule::Kind::kExactReference},
      {R"({"type":"exactRepository","dockerRepository":"a.com/b"})",
       SignedIdentityRule::Kind::kExactRepository},
      {R"({"type":"remapIdentity","prefix":"mirror.example:5000/ns","signedPrefix":"docker.io/library"})",
       SignedIdentityRule::Kind::kRemapIdentity},
      {R"({"type":"remapIdentity","prefix":"example.com","signedPrefix":"localhost"})",
       SignedIdentityRule::Kind::kRemapIdentity},
  };
  for (const Case& c : ok) {
    auto r = SignedIdentityRule::Parse(c.json);
    ASSERT_TRUE(r.ok()) << c.json << ": " << r.error().message;
    EXPECT_EQ(r->kind, c.kind) << c.json;
  }
  const char* bad[][2] = {
      {R"({"type":"matchExact","dockerReference":"a"})", "unknown field \"dockerReference\""},
      {R"({})", "missing required field \"type\""},
      {R"({"type":"exactReference"})", "missing required field \"dockerReference\""},
      {R"({"type":"exactReference","dockerReference":"busybox"})",
       "contains neither a tag nor a digest"},
      {R"({"type":"exactReference","dockerReference":"UPPERCASE_IS_INVALID:1"})",
       "invalid docker reference"},
      {R"({"type":"exactReference","dockerReference":1})", "dockerReference: expected a string"},
      {R"({"type":"exactRepository"})", "missing required field \"dockerRepository\""},
      {R"({"type":"exactRepository","dockerRepository":"Not Valid"})", "invalid docker repository"},
      {R"({"type":"remapIdentity","prefix":"example.com"})",
       "missing required field \"signedPrefix\""},
      {R"({"type":"remapIdentity","prefix":"example.com/","signedPrefix":"a.com"})",
       "prefix \"example.com/\" is not valid"},
      {R"({"type":"remapIdentity","prefix":"example.com","signedPrefix":"a.com/UPPER"})",
       "signedPrefix: prefix \"a.com/UPPER\" is not valid"},
      {R"({"type":"remapIdentity","prefix":"example.com:/x","signedPrefix":"a.com"})",
       "is not valid"},
      {R"("matchExact")", "expected a JSON object"},
  };
  for (const auto& b : bad) {
    auto r = SignedIdentityRule::Parse(b[0]);
    ASSERT_FALSE(r.ok()) << b[0];
    EXPECT_EQ(r.error().errnum, EINVAL);
    EXPECT_NE(r.error().message.find(b[1]), std::string::npos) << b[0] << ": " << r.error().message;
  }
}

// The name pattern's "[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*" can split a run of letters in
// exponentially many ways; a backtracking matcher never finished this prefix (found by
// fuzzing). RE2 refuses it at once.
TEST(PolicyParse, ALongInvalidRemapPrefixIsRefusedInLinearTime) {
  const std::string prefix =
      "127" + std::string(200, 'r') + "%%?" + std::string(40, 'r') + ".0.0.1:5000";
  auto r = SignedIdentityRule::Parse(R"({"type":"remapIdentity","prefix":")" + prefix +
                                     R"(","signedPrefix":"a.com"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is not valid"), std::string::npos) << r.error().message;
  auto good =
      SignedIdentityRule::Parse(R"({"type":"remapIdentity","prefix":"a)" + std::string(200, 'r') +
                                R"(.example/ns","signedPrefix":"a.com"})");
  EXPECT_TRUE(good.ok()) << good.error().message;
}

TEST(PolicyParse, DirAndOciScopesAreValidatedOthersOpaque) {
  auto scope_error = [](const std::string& transport, const std::string& scope) {
    return ParseError(R"({"default":[{"type":"reject"}],"transports":{")" + transport + R"(":{")" +
                      scope + R"(":[{"type":"reject"}]}}})");
  };
  for (const char* t : {"dir", "oci"}) {
    EXPECT_NE(scope_error(t, "relative/path").find("must be an absolute path"), std::string::npos);
    EXPECT_NE(scope_error(t, "/").find("use the default scope"), std::string::npos);
    EXPECT_NE(scope_error(t, "/a//b").find("not in canonical form, perhaps /a/b"),
              std::string::npos);
    EXPECT_NE(scope_error(t, "/a/b/").find("not in canonical form"), std::string::npos);
    EXPECT_NE(scope_error(t, "/a/./b").find("not in canonical form"), std::string::npos);
  }
  // docker scopes are not validated (as containers/image), nor are other transports'.
  MustParse(R"({"default":[{"type":"reject"}],"transports":{
    "docker":{"anything goes":[{"type":"reject"}]},
    "containers-storage":{"relative":[{"type":"reject"}]},
    "somethingnew":{"x":[{"type":"reject"}]}}})");
  // The requirements of an opaque transport are still parsed strictly.
  EXPECT_NE(ParseError(
                R"({"default":[{"type":"reject"}],"transports":{"atomic":{"x":[{"type":"bad"}]}}})")
                .find(R"(transports.atomic["x"][0].type: unknown policy requirement type)"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Scopes.

TEST(PolicyScopes, DockerMostSpecificFirstWithWildcards) {
  EXPECT_EQ(PolicyScopes(Ref("docker://registry.example.com:5000/ns/sub/app:v1")),
            (std::vector<std::string>{
                "registry.example.com:5000/ns/sub/app:v1", "registry.example.com:5000/ns/sub/app",
                "registry.example.com:5000/ns/sub", "registry.example.com:5000/ns",
                "registry.example.com:5000", "*.example.com", "*.com"}));
  const std::string digest =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  EXPECT_EQ(
      PolicyScopes(Ref("docker://busybox@" + digest)),
      (std::vector<std::string>{"docker.io/library/busybox@" + digest, "docker.io/library/busybox",
                                "docker.io/library", "docker.io", "*.io"}));
  EXPECT_EQ(PolicyScopes(Ref("docker://localhost/app")),
            (std::vector<std::string>{"localhost/app:latest", "localhost/app", "localhost"}));
}

TEST(PolicyScopes, DockerLookupOrder) {
  auto policy_with = [](const std::vector<std::string>& scopes) {
    std::string s = R"({"default":[{"type":"reject"}],"transports":{"docker":{)";
    for (size_t i = 0; i < scopes.size(); ++i) {
      s += (i ? "," : "") + std::string("\"") + scopes[i] +
           R"(":[{"type":"insecureAcceptAnything"}])";
    }
    return MustParse(s + "}}}");
  };
  ImageReference ref = Ref("docker://registry.example.com/ns/app:v1");
  const std::vector<std::string> all = {"registry.example.com/ns/app:v1",
                                        "registry.example.com/ns/app",
                                        "registry.example.com/ns",
                                        "registry.example.com",
                                        "*.example.com",
                                        "*.com",
                                        ""};
  // Removing the most specific scope each time, the next one is used.
  for (size_t i = 0; i < all.size(); ++i) {
    std::vector<std::string> scopes(all.begin() + i, all.end());
    // Scopes that never apply to this image must not be picked.
    scopes.push_back("registry.example.com/ns/app:v2");
    scopes.push_back("registry.example.com/other");
    scopes.push_back("*.example.org");
    scopes.push_back("example.com");
    Policy p = policy_with(scopes);
    EXPECT_EQ(PolicyScopeFor(p, ref), "transports.docker[\"" + all[i] + "\"]");
  }
  Policy only_unrelated = policy_with({"quay.io"});
  EXPECT_EQ(PolicyScopeFor(only_unrelated, ref), "default");
  // Another transport's scopes don't apply.
  Policy other = MustParse(
      R"({"default":[{"type":"reject"}],"transports":{"atomic":{"registry.example.com":[{"type":"insecureAcceptAnything"}]}}})");
  EXPECT_EQ(PolicyScopeFor(other, ref), "default");
}

TEST(PolicyScopes, DirResolvedPathAndParents) {
  TempDir tmp("regfs-policy-test");
  ASSERT_TRUE(MakeDirs(tmp.path() + "/real/img", 0755).ok());
  std::filesystem::create_directory_symlink(tmp.path() + "/real", tmp.path() + "/link");
  std::string real = std::filesystem::canonical(tmp.path()).string() + "/real/img";
  std::vector<std::string> want = {real};
  for (std::string p = real; p.rfind('/') > 0;) {
    p.resize(p.rfind('/'));
    want.push_back(p);
  }
  EXPECT_EQ(PolicyScopes(Ref("dir:" + tmp.path() + "/link/img")), want);
  EXPECT_EQ(PolicyScopes(Ref("dir:" + tmp.path() + "/link/img/")), want);
  EXPECT_EQ(PolicyScopes(Ref("dir:/a/b/c")), (std::vector<std::string>{"/a/b/c", "/a/b", "/a"}));

  Policy p = MustParse(R"({"default":[{"type":"reject"}],"transports":{"dir":{
      "/a/b":[{"type":"insecureAcceptAnything"}],"/a":[{"type":"reject"}],
      "":[{"type":"reject"}]}}})");
  EXPECT_EQ(PolicyScopeFor(p, Ref("dir:/a/b/c")), R"(transports.dir["/a/b"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("dir:/a/b")), R"(transports.dir["/a/b"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("dir:/a/bc")), R"(transports.dir["/a"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("dir:/z")), R"(transports.dir[""])");
  EXPECT_TRUE(EvaluatePolicy(p, PolicyImage{Ref("dir:/a/b/c"), "", {}}).accepted);
  EXPECT_FALSE(EvaluatePolicy(p, PolicyImage{Ref("dir:/a/bc"), "", {}}).accepted);
}

// As containers/image: the reference inside the layout is not part of the identity.
TEST(PolicyScopes, OciPathAndParents) {
  EXPECT_EQ(PolicyScopes(Ref("oci:/a/b:v1")), (std::vector<std::string>{"/a/b", "/a"}));
  EXPECT_EQ(PolicyScopes(Ref("oci:/a/b")), (std::vector<std::string>{"/a/b", "/a"}));
  Policy p = MustParse(R"({"default":[{"type":"reject"}],"transports":{"oci":{
      "/a/b":[{"type":"insecureAcceptAnything"}],"/a":[{"type":"reject"}]}}})");
  EXPECT_EQ(PolicyScopeFor(p, Ref("oci:/a/b:v1")), R"(transports.oci["/a/b"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("oci:/a/x:v2")), R"(transports.oci["/a"])");
  EXPECT_EQ(PolicyScopeFor(p, Ref("oci:/c")), "default");
  // dir: scopes don't apply to oci: images.
  Policy d = MustParse(
      R"({"default":[{"type":"reject"}],"transports":{"dir":{"/a":[{"type":"insecureAcceptAnything"}]}}})");
  EXPECT_EQ(PolicyScopeFor(d, Ref("oci:/a/b")), "default");
}

// ---------------------------------------------------------------------------------------------
// Identity rules, after containers/image's policy_reference_match_test.go.

constexpr char kD1[] = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kD2[] = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kRhel[] = "registry.access.redhat.com/rhel7/rhel:7.2.3";
constexpr char kRhelUntagged[] = "registry.access.redhat.com/rhel7/rhel";

struct MatchCase {
  std::string image;  // docker reference of the image (a tag or digest: images always have one)
  std::string sig;    // the signed reference
  bool want;
};

SignedIdentityRule Rule(const std::string& json) {
  auto r = SignedIdentityRule::Parse(json);
  EXPECT_TRUE(r.ok()) << json;
  return r.ok() ? r.value() : SignedIdentityRule{};
}

void CheckTable(const std::string& rule_json, const std::vector<MatchCase>& table) {
  SignedIdentityRule rule = Rule(rule_json);
  for (const MatchCase& c : table) {
    EXPECT_EQ(rule.Matches(Ref("docker://" + c.image), c.sig), c.want)
        << rule_json << ": image " << c.image << " signed " << c.sig;
  }
}

const std::string D1 = kD1, D2 = kD2;

TEST(PolicyIdentity, MatchExact) {
  CheckTable(R"({"type":"matchExact"})",
             {
                 {"busybox:latest", "busybox:latest", true},
                 {kRhel, kRhel, true},
                 {"busybox" + D1, "busybox" + D1, true},
                 {"library/busybox:latest", "busybox:latest", true},
                 {"busybox:latest", "docker.io/library/busybox:latest", true},
                 {"busybox:latest", "index.docker.io/library/busybox:latest", true},
                 {"busybox:latest", "busybox:notlatest", false},
                 {"busybox:latest", "notbusybox:latest", false},
                 {"busybox:latest", "hostname/library/busybox:latest", false},
                 {"busybox:latest", kRhel, false},
                 {"busybox" + D1, "notbusybox" + D1, false},
                 {"busybox:latest", "busybox" + D1, false},
                 {"busybox" + D1, "busybox:latest", false},
                 {"busybox" + D1, "busybox" + D2, false},
                 {"busybox", "busybox", false},        // a signature without tag never matches
                 {"busybox", "busybox:latest", true},  // the image's implied :latest
                 {"busybox:latest", "", false},
                 {"busybox:latest", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", false},
             });
}

TEST(PolicyIdentity, MatchRepoDigestOrExact) {
  CheckTable(R"({"type":"matchRepoDigestOrExact"})",
             {
                 // Tagged images: exact matches only.
                 {"busybox:latest", "busybox:latest", true},
                 {kRhel, kRhel, true},
                 {"busybox:latest", "busybox:notlatest", false},
                 {"busybox:latest", "busybox" + D1, false},
                 {"busybox:latest", "busybox", false},
                 {"busybox:latest", "notbusybox:latest", false},
                 // Digested images: any signature of the repository with a tag or digest.
                 {"busybox" + D1, "busybox" + D1, true},
                 {"busybox" + D1, "busybox" + D2, true},
                 {"busybox" + D1, "busybox:latest", true},
                 {"busybox" + D1, "busybox", false},
                 {"busybox" + D1, "notbusybox" + D1, false},
                 {"busybox" + D1, "hostname/library/busybox" + D1, false},
                 {"busybox:latest", "", false},
             });
}

TEST(PolicyIdentity, MatchRepository) {
  CheckTable(R"({"type":"matchRepository"})",
             {
                 {"busybox:latest", "busybox:latest", true},
                 {"busybox:latest", "busybox:notlatest", true},
                 {"library/busybox:latest", "busybox:notlatest", true},
                 {"busybox:notlatest", "docker.io/library/busybox:latest", true},
                 {"busybox:latest", "busybox" + D1, true},
                 {"busybox" + D1, "busybox" + D2, true},
                 {kRhel, kRhelUntagged, true},
                 {"busybox", "busybox", true},
                 {"busybox:latest", "notbusybox:latest", false},
                 {"hostname/library/busybox:latest", "busybox:notlatest", false},
                 {"busybox:latest", kRhel, false},
                 {"busybox" + D1, "notbusybox" + D1, false},
                 {"busybox:latest", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", false},
             });
}

TEST(PolicyIdentity, ExactReferenceIgnoresTheImage) {
  SignedIdentityRule r = Rule(R"({"type":"exactReference","dockerReference":"busybox:latest"})");
  for (const std::string img : {"docker://quay.io/other:1", "dir:/x", "oci:/y:z"}) {
    EXPECT_TRUE(r.Matches(Ref(img), "busybox:latest")) << img;
    EXPECT_TRUE(r.Matches(Ref(img), "docker.io/library/busybox:latest")) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "busybox")) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "busybox:notlatest")) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "busybox" + D1)) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "quay.io/other:1")) << img;
  }
  SignedIdentityRule d =
      Rule(R"({"type":"exactReference","dockerReference":"busybox)" + D1 + "\"}");
  EXPECT_TRUE(d.Matches(Ref("dir:/x"), "busybox" + D1));
  EXPECT_FALSE(d.Matches(Ref("dir:/x"), "busybox" + D2));
  EXPECT_FALSE(d.Matches(Ref("dir:/x"), "busybox:latest"));
}

TEST(PolicyIdentity, ExactRepositoryIgnoresTheImage) {
  SignedIdentityRule r = Rule(R"({"type":"exactRepository","dockerRepository":"busybox"})");
  for (const std::string img : {"docker://quay.io/other:1", "dir:/x", "oci:/y"}) {
    EXPECT_TRUE(r.Matches(Ref(img), "busybox")) << img;
    EXPECT_TRUE(r.Matches(Ref(img), "busybox:notlatest")) << img;
    EXPECT_TRUE(r.Matches(Ref(img), "docker.io/library/busybox" + D1)) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "notbusybox:latest")) << img;
    EXPECT_FALSE(r.Matches(Ref(img), "quay.io/busybox:latest")) << img;
  }
  // A tag in dockerRepository is ignored: only the repository counts.
  SignedIdentityRule t = Rule(R"({"type":"exactRepository","dockerRepository":"a.com/b:tag"})");
  EXPECT_TRUE(t.Matches(Ref("dir:/x"), "a.com/b:other"));
}

TEST(PolicyIdentity, RemapIdentity) {
  struct Case {
    std::string prefix, signed_prefix, image, sig;
    bool want;
  };
  const Case cases[] = {
      {"does-not-match.com", "does-not-match.rewritten", "busybox:latest", "busybox:latest", true},
      {"does-not-match.com", "does-not-match.rewritten", "busybox:latest", "notbusybox:latest",
       false},
      {"mirror.example", "public.com", "mirror.example/busybox:1", "public.com/busybox:1", true},
      {"mirror.example", "public.com", "mirror.example/busybox:1", "public.com/busybox:not1",
       false},
      {"mirror.example", "public.com", "mirror.example/busybox:1", "mirror.example/busybox:1",
       false},
      {"mirror.example", "docker.io/library", "mirror.example/busybox:latest", "busybox:latest",
       true},
      {"mirror.example", "docker.io/library", "mirror.example/alpine:latest", "busybox:latest",
       false},
      {"docker.io/library", "original.com", "copied:latest", "original.com/copied:latest", true},
      {"docker.io/library", "original.com", "copied:latest", "original.com/ns/copied:latest",
       false},
      // The prefix matches whole path components only.
      {"example.com/ns", "public.com/ns", "example.com/ns2/image:1", "public.com/ns2/image:1",
       false},
      {"example.com/ns", "public.com/x", "example.com/ns/image:1", "public.com/x/image:1", true},
      {"example.com:5000", "public.com", "example.com:5000/image:1", "public.com/image:1", true},
      {"example.com:5000", "public.com", "example.com:50000/image:1", "public.com/image:1", false},
      // Digested images remapped: matchRepoDigestOrExact semantics.
      {"mirror.example", "public.com", "mirror.example/busybox" + D1, "public.com/busybox" + D2,
       true},
      // Rewritten to a non-canonical name ("docker.io/busybox" is not docker.io/library/busybox).
      {"docker.io/library/busybox", "docker.io", "busybox:latest", "docker.io/busybox:latest",
       false},
  };
  for (const Case& c : cases) {
    SignedIdentityRule r = Rule(R"({"type":"remapIdentity","prefix":")" + c.prefix +
                                R"(","signedPrefix":")" + c.signed_prefix + "\"}");
    EXPECT_EQ(r.Matches(Ref("docker://" + c.image), c.sig), c.want)
        << c.prefix << " → " << c.signed_prefix << ": image " << c.image << " signed " << c.sig;
  }
}

TEST(PolicyIdentity, ImageRelativeRulesNeverMatchDirOrOci) {
  for (const char* rule :
       {R"({"type":"matchExact"})", R"({"type":"matchRepoDigestOrExact"})",
        R"({"type":"matchRepository"})",
        R"({"type":"remapIdentity","prefix":"docker.io","signedPrefix":"docker.io"})"}) {
    SignedIdentityRule r = Rule(rule);
    EXPECT_FALSE(r.Matches(Ref("dir:/x"), "busybox:latest")) << rule;
    EXPECT_FALSE(r.Matches(Ref("oci:/x:busybox"), "busybox:latest")) << rule;
    EXPECT_FALSE(r.Matches(Ref("dir:/x"), "")) << rule;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation without verification.

TEST(PolicyEvaluate, InsecureAcceptAnythingAndReject) {
  PolicyImage img{Ref("docker://quay.io/a/b:1"), "{}", {}};
  PolicyVerdict v = EvaluatePolicy(Policy::InsecureAcceptAnything(), img);
  EXPECT_TRUE(v.accepted);
  EXPECT_EQ(v.accepted_by, "insecureAcceptAnything");
  EXPECT_FALSE(PolicyNeedsSignatures(Policy::InsecureAcceptAnything(), img.ref));

  Policy p = MustParse(R"({"default":[{"type":"insecureAcceptAnything"}],
      "transports":{"docker":{"quay.io/a":[{"type":"insecureAcceptAnything"},{"type":"reject"}]}}})");
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("rejected by policy"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find(R"(transports.docker["quay.io/a"])"), std::string::npos) << v.reason;
  EXPECT_TRUE(v.accepted_by.empty());
  EXPECT_TRUE(EvaluatePolicy(p, PolicyImage{Ref("docker://quay.io/b:1"), "{}", {}}).accepted);
}

TEST(PolicyEvaluate, SignedBaseLayerAndOtherKeyTypesAreRefused) {
  Policy b = MustParse(WithDefault(
      R"({"type":"signedBaseLayer","baseLayerIdentity":{"type":"exactRepository","dockerRepository":"a.com/b"}})"));
  PolicyVerdict v = EvaluatePolicy(b, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signedBaseLayer is not implemented"), std::string::npos) << v.reason;
  Policy x =
      MustParse(WithDefault(R"({"type":"signedBy","keyType":"X509Certificates","keyPath":"/k"})"));
  v = EvaluatePolicy(x, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("keyType \"X509Certificates\" is not supported"), std::string::npos)
      << v.reason;
}

TEST(PolicyEvaluate, NoSignaturesOrOnlyOtherFormats) {
  Policy p = MustParse(WithDefault(SigstoreKey("cosign.pub", R"({"type":"matchRepository"})")));
  PolicyImage none = DirImage("dir-img-cosign-valid");
  none.signatures.clear();
  PolicyVerdict v = EvaluatePolicy(p, none);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.reason,
            "sigstoreSigned: no signature accepted: the image has no sigstore signatures");

  // A non-signature attachment is ignored, so nothing is accepted.
  v = EvaluatePolicy(p, DirImage("dir-img-cosign-other-attachment"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("no sigstore signatures (0 of another format, 1 other attachments)"),
            std::string::npos)
      << v.reason;
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_FALSE(v.signatures[0].accepted);
  EXPECT_NE(v.signatures[0].reason.find("not a sigstore signature (MIME type \"text/plain\")"),
            std::string::npos);

  // A simple signing signature under a sigstoreSigned rule, and the other way round.
  Signature gpg;
  gpg.format = Signature::Format::kSimpleSigning;
  gpg.simple_signing = "\x90\x0d";
  PolicyImage with_gpg = DirImage("dir-img-cosign-valid");
  with_gpg.signatures = {gpg};
  v = EvaluatePolicy(p, with_gpg);
  EXPECT_FALSE(v.accepted);
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_EQ(v.signatures[0].reason, "not a sigstore signature");
  Policy g = MustParse(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys","keyData":"YQ=="})"));
  v = EvaluatePolicy(g, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signedBy: no signature accepted: the image has no simple signing"),
            std::string::npos)
      << v.reason;
  EXPECT_EQ(v.signatures[0].reason, "not a simple signing (GPG) signature");
}

TEST(PolicyEvaluate, MissingKeyFileRefusesNamingIt) {
  TempDir tmp("regfs-policy-test");
  ASSERT_TRUE(WriteFileAtomic(
                  tmp.path() + "/policy.json",
                  WithDefault(R"({"type":"sigstoreSigned","keyPath":"keys/missing.pub"})"), 0644)
                  .ok());
  auto p = Policy::Load(tmp.path() + "/policy.json");
  ASSERT_TRUE(p.ok()) << p.error().message;
  PolicyVerdict v = EvaluatePolicy(*p, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  // A relative keyPath is read from the working directory, as containers/image reads it.
  EXPECT_NE(v.reason.find("reading key keys/missing.pub"), std::string::npos) << v.reason;
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_NE(v.signatures[0].reason.find("keys/missing.pub"), std::string::npos);
}

TEST(PolicyLoad, ErrorsAndDefaultLocation) {
  TempDir tmp("regfs-policy-test");
  auto missing = Policy::Load(tmp.path() + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, ENOENT);
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/bad.json", WithDefault(R"({"type":"x"})"), 0644).ok());
  auto bad = Policy::Load(tmp.path() + "/bad.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, EINVAL);
  EXPECT_NE(bad.error().message.find("invalid policy in"), std::string::npos);
  EXPECT_NE(bad.error().message.find("bad.json"), std::string::npos);

  // $HOME/.config/containers/policy.json first.
  const char* old_home = getenv("HOME");
  std::string saved = old_home ? old_home : "";
  ASSERT_TRUE(MakeDirs(tmp.path() + "/.config/containers", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/.config/containers/policy.json",
                              WithDefault(R"({"type":"reject"})"), 0644)
                  .ok());
  setenv("HOME", tmp.path().c_str(), 1);
  auto path = DefaultPolicyPath();
  auto loaded = Policy::Load("");
  if (old_home) {
    setenv("HOME", saved.c_str(), 1);
  } else {
    unsetenv("HOME");
  }
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, tmp.path() + "/.config/containers/policy.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_FALSE(EvaluatePolicy(*loaded, PolicyImage{Ref("dir:/x"), "", {}}).accepted);
}

// ---------------------------------------------------------------------------------------------
// Evaluation against the cosign fixtures (tests/fixtures/sigstore/README.md).

TEST(PolicyFixtures, ValidAsDirWithExactRepository) {
  for (const char* fixture : {"dir-img-cosign-valid", "dir-img-cosign-valid-2"}) {
    Policy p = MustParse(WithDefault(SigstoreKey(
        "cosign.pub",
        std::string(R"({"type":"exactRepository","dockerRepository":")") + kValidRepo + "\"}")));
    PolicyVerdict v = EvaluatePolicy(p, DirImage(fixture));
    EXPECT_TRUE(v.accepted) << fixture << ": " << v.reason;
    EXPECT_EQ(v.accepted_by, "sigstore key " + kFixtures + "/cosign.pub") << fixture;
    for (const SignatureVerdict& s : v.signatures) {
      EXPECT_TRUE(s.accepted) << fixture << ": " << s.reason;
      EXPECT_EQ(s.reason, "sigstore key " + kFixtures + "/cosign.pub");
    }
    EXPECT_EQ(v.signatures.size(), std::string(fixture) == "dir-img-cosign-valid" ? 1u : 2u);
  }
}

TEST(PolicyFixtures, ValidAsDockerWithMatchRepository) {
  Policy p = MustParse(WithDefault(SigstoreKey("cosign.pub", R"({"type":"matchRepository"})")));
  PolicyImage img =
      DirImage("dir-img-cosign-valid", Ref(std::string("docker://") + kValidRepo + ":anytag"));
  PolicyVerdict v = EvaluatePolicy(p, img);
  EXPECT_TRUE(v.accepted) << v.reason;
  // The signature names the repository only: matchExact (and the default) refuse it.
  for (const char* rule : {R"({"type":"matchExact"})", ""}) {
    Policy e = MustParse(WithDefault(SigstoreKey("cosign.pub", rule)));
    v = EvaluatePolicy(e, img);
    EXPECT_FALSE(v.accepted) << rule;
    EXPECT_NE(v.reason.find("signature 1: signed identity \"" + std::string(kValidRepo) +
                            "\" does not match " + kValidRepo + ":anytag"),
              std::string::npos)
        << v.reason;
  }
  // Another repository.
  img.ref = Ref("docker://192.168.64.2:5000/other:anytag");
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("does not match 192.168.64.2:5000/other:anytag (matchRepository)"),
            std::string::npos)
      << v.reason;
}

TEST(PolicyFixtures, ValidWithTagExactReferenceAndMatchExact) {
  const std::string signed_ref = "192.168.64.2:5000/skopeo-signed:tag";
  Policy exact_ref = MustParse(WithDefault(SigstoreKey(
      "cosign.pub", R"({"type":"exactReference","dockerReference":")" + signed_ref + "\"}")));
  PolicyVerdict v = EvaluatePolicy(exact_ref, DirImage("dir-img-cosign-valid-with-tag"));
  EXPECT_TRUE(v.accepted) << v.reason;

  Policy match_exact =
      MustParse(WithDefault(SigstoreKey("cosign.pub", R"({"type":"matchExact"})")));
  v = EvaluatePolicy(match_exact,
                     DirImage("dir-img-cosign-valid-with-tag", Ref("docker://" + signed_ref)));
  EXPECT_TRUE(v.accepted) << v.reason;
  // The default rule, matchRepoDigestOrExact, accepts it too for the tagged reference.
  Policy dflt = MustParse(WithDefault(SigstoreKey("cosign.pub", "")));
  EXPECT_TRUE(
      EvaluatePolicy(dflt, DirImage("dir-img-cosign-valid-with-tag", Ref("docker://" + signed_ref)))
          .accepted);
  v = EvaluatePolicy(match_exact, DirImage("dir-img-cosign-valid-with-tag",
                                           Ref("docker://192.168.64.2:5000/skopeo-signed:other")));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signed identity \"" + signed_ref + "\" does not match"),
            std::string::npos)
      << v.reason;
  // Rejected identity for dir: with exactReference to something else.
  Policy other = MustParse(WithDefault(
      SigstoreKey("cosign.pub", R"({"type":"exactReference","dockerReference":"a.com/b:tag"})")));
  v = EvaluatePolicy(other, DirImage("dir-img-cosign-valid-with-tag"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("does not match a.com/b:tag (exactReference)"), std::string::npos)
      << v.reason;
  // matchRepository needs the image's docker reference, which a dir: image has not.
  Policy repo = MustParse(WithDefault(SigstoreKey("cosign.pub", R"({"type":"matchRepository"})")));
  v = EvaluatePolicy(repo, DirImage("dir-img-cosign-valid-with-tag"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("has no docker reference for matchRepository"), std::string::npos)
      << v.reason;
}

TEST(PolicyFixtures, KeyRekorValidWithItsKey) {
  Policy p = MustParse(WithDefault(SigstoreKey(
      "cosign2.pub",
      R"({"type":"exactRepository","dockerRepository":"192.168.64.2:5000/cosign-signed/key-1"})")));
  PolicyVerdict v = EvaluatePolicy(p, DirImage("dir-img-cosign-key-rekor-valid"));
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "sigstore key " + kFixtures + "/cosign2.pub");
  // Docker reference form.
  Policy m = MustParse(WithDefault(SigstoreKey("cosign2.pub", R"({"type":"matchRepository"})")));
  v = EvaluatePolicy(m, DirImage("dir-img-cosign-key-rekor-valid",
                                 Ref("docker://192.168.64.2:5000/cosign-signed/key-1:v1")));
  EXPECT_TRUE(v.accepted) << v.reason;
}

TEST(PolicyFixtures, KeyNotInPolicy) {
  const std::string repo_rule =
      std::string(R"({"type":"exactRepository","dockerRepository":")") + kValidRepo + "\"}";
  Policy p = MustParse(WithDefault(SigstoreKey("cosign2.pub", repo_rule)));
  PolicyVerdict v = EvaluatePolicy(p, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("sigstoreSigned: no signature accepted: signature 1: not verified by the "
                          "policy's keys"),
            std::string::npos)
      << v.reason;
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_FALSE(v.signatures[0].accepted);
  EXPECT_NE(v.signatures[0].reason.find("not verified by the policy's keys"), std::string::npos);

  // unknown-cosign-key.signature with cosign.pub.
  Policy c = MustParse(WithDefault(SigstoreKey("cosign.pub", repo_rule)));
  PolicyImage img = DirImage("dir-img-cosign-valid");
  img.signatures = {SigFromFile("unknown-cosign-key.signature")};
  v = EvaluatePolicy(c, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signature 1: not verified by the policy's keys"), std::string::npos)
      << v.reason;

  // An RSA key: wrong key type for these signatures.
  Policy rsa = MustParse(WithDefault(SigstoreKey("some-rsa-key.pub", repo_rule)));
  v = EvaluatePolicy(rsa, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);

  // With both keys (keyPaths), the second verifies.
  Policy both = MustParse(WithDefault(R"({"type":"sigstoreSigned","keyPaths":[")" + kFixtures +
                                      "/cosign2.pub\",\"" + kFixtures +
                                      R"(/cosign.pub"],"signedIdentity":)" + repo_rule + "}"));
  v = EvaluatePolicy(both, DirImage("dir-img-cosign-valid"));
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "sigstore key " + kFixtures + "/cosign.pub");
  // And as keyDatas.
  Policy datas = MustParse(WithDefault(R"({"type":"sigstoreSigned","keyDatas":[")" +
                                       Base64Encode(ReadFixture("cosign2.pub")) + "\",\"" +
                                       Base64Encode(ReadFixture("cosign.pub")) +
                                       R"("],"signedIdentity":)" + repo_rule + "}"));
  v = EvaluatePolicy(datas, DirImage("dir-img-cosign-valid"));
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "sigstore key keyDatas[1]");
}

TEST(PolicyFixtures, MixedAcceptedBySecond) {
  Policy p = MustParse(WithDefault(SigstoreKey("cosign.pub", R"({"type":"matchRepository"})")));
  PolicyVerdict v = EvaluatePolicy(
      p, DirImage("dir-img-cosign-mixed", Ref(std::string("docker://") + kValidRepo + ":t")));
  EXPECT_TRUE(v.accepted) << v.reason;
  ASSERT_EQ(v.signatures.size(), 2u);
  EXPECT_FALSE(v.signatures[0].accepted);
  EXPECT_NE(v.signatures[0].reason.find("not verified by the policy's keys"), std::string::npos);
  EXPECT_TRUE(v.signatures[1].accepted) << v.signatures[1].reason;
}

TEST(PolicyFixtures, TamperedManifestAndOtherDigest) {
  Policy p = MustParse(WithDefault(SigstoreKey(
      "cosign.pub",
      std::string(R"({"type":"exactRepository","dockerRepository":")") + kValidRepo + "\"}")));
  const std::string signed_digest =
      "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
  for (const char* fixture :
       {"dir-img-cosign-modified-manifest", "dir-img-cosign-manifest-digest-error"}) {
    PolicyImage img = DirImage(fixture);
    PolicyVerdict v = EvaluatePolicy(p, img);
    EXPECT_FALSE(v.accepted) << fixture;
    EXPECT_NE(v.reason.find("signature 1: digest " + signed_digest + " does not match manifest " +
                            DigestOf(img.manifest)),
              std::string::npos)
        << fixture << ": " << v.reason;
  }
  // A valid signature for another image's digest.
  PolicyImage img = DirImage("dir-img-cosign-valid");
  img.manifest += " ";
  PolicyVerdict v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("digest " + signed_digest + " does not match manifest"),
            std::string::npos)
      << v.reason;
  // No manifest at all: nothing to match.
  PolicyImage no_manifest = DirImage("dir-img-cosign-valid");
  no_manifest.manifest.clear();
  EXPECT_FALSE(EvaluatePolicy(p, no_manifest).accepted);
  EXPECT_FALSE(PathExists(kFixtures + "/dir-img-cosign-no-manifest/manifest.json"));
}

TEST(PolicyFixtures, EveryRequirementMustAccept) {
  const std::string rule =
      std::string(R"({"type":"exactRepository","dockerRepository":")") + kValidRepo + "\"}";
  Policy p = MustParse(R"({"default":[)" + SigstoreKey("cosign.pub", rule) + "," +
                       SigstoreKey("cosign2.pub", rule) + "]}");
  PolicyVerdict v = EvaluatePolicy(p, DirImage("dir-img-cosign-valid"));
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("not verified by the policy's keys"), std::string::npos) << v.reason;
  Policy q = MustParse(R"({"default":[)" + SigstoreKey("cosign.pub", rule) +
                       R"(,{"type":"insecureAcceptAnything"}]})");
  v = EvaluatePolicy(q, DirImage("dir-img-cosign-valid"));
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "sigstore key " + kFixtures + "/cosign.pub, insecureAcceptAnything");
}

// ---------------------------------------------------------------------------------------------
// Signatures made here: sigstore with a generated key, simple signing with a real gpg.

TEST(PolicySigstoreSigned, GeneratedKeyDigestAndIdentity) {
  TempDir tmp("regfs-policy-test");
  auto key = GenerateSigstoreKey();
  ASSERT_TRUE(key.ok());
  auto pem = PublicKeyPem(key->get());
  ASSERT_TRUE(pem.ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("key.pub"), *pem, 0644).ok());
  const std::string manifest = R"({"schemaVersion":2})";
  const std::string other = R"({"schemaVersion":2,"x":1})";
  auto good = SignSigstore(key->get(), DigestOf(manifest), "example.com/ns/app:v1");
  auto for_other = SignSigstore(key->get(), DigestOf(other), "example.com/ns/app:v1");
  ASSERT_TRUE(good.ok() && for_other.ok());
  Policy p = MustParse(
      R"({"default":[{"type":"reject"}],"transports":{"docker":{
      "example.com/ns":[{"type":"sigstoreSigned","keyPath":")" +
      tmp.Sub("key.pub") + R"("}],
      "mirror.example":[{"type":"sigstoreSigned","keyPath":")" +
      tmp.Sub("key.pub") +
      R"(","signedIdentity":{"type":"remapIdentity","prefix":"mirror.example","signedPrefix":"example.com"}}]}}})");
  PolicyImage img{Ref("docker://example.com/ns/app:v1"), manifest, {*for_other, *good}};
  EXPECT_TRUE(PolicyNeedsSignatures(p, img.ref));
  PolicyVerdict v = EvaluatePolicy(p, img);
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "sigstore key " + tmp.Sub("key.pub"));
  ASSERT_EQ(v.signatures.size(), 2u);
  EXPECT_FALSE(v.signatures[0].accepted);
  EXPECT_EQ(v.signatures[0].reason,
            "digest " + DigestOf(other) + " does not match manifest " + DigestOf(manifest));
  EXPECT_TRUE(v.signatures[1].accepted);

  // Only the signature for another digest: refused, naming signature 1.
  img.signatures = {*for_other};
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.reason, "sigstoreSigned: no signature accepted: signature 1: digest " +
                          DigestOf(other) + " does not match manifest " + DigestOf(manifest));

  // Another tag: the default matchRepoDigestOrExact refuses it.
  img = PolicyImage{Ref("docker://example.com/ns/app:v2"), manifest, {*good}};
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signed identity \"example.com/ns/app:v1\" does not match "
                          "example.com/ns/app:v2 (matchRepoDigestOrExact)"),
            std::string::npos)
      << v.reason;
  // By digest, the repository's signatures are accepted.
  img.ref = Ref("docker://example.com/ns/app@" + DigestOf(manifest));
  EXPECT_TRUE(EvaluatePolicy(p, img).accepted);

  // A mirror with remapIdentity.
  img.ref = Ref("docker://mirror.example/ns/app:v1");
  v = EvaluatePolicy(p, img);
  EXPECT_TRUE(v.accepted) << v.reason;
  img.ref = Ref("docker://mirror.example/ns/app:v2");
  EXPECT_FALSE(EvaluatePolicy(p, img).accepted);
  // Not under any scope: the default rejects.
  img.ref = Ref("docker://quay.io/ns/app:v1");
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("rejected by policy (default)"), std::string::npos) << v.reason;
}

using testing::Shell;

// A GnuPG home of the test's own with one signing key, exported to `dir`/key.gpg.
struct GpgKey {
  std::string fingerprint;
  std::string public_path;
};

std::optional<GpgKey> MakeGpgKey(const TempDir& dir, const std::string& name) {
  if (!Shell("command -v gpg")) return std::nullopt;
  std::string home = dir.Sub(name + "-home");
  if (!MakeDirs(home, 0700).ok()) return std::nullopt;
  std::string gpg = "gpg --batch --homedir '" + home + "'";
  std::string uid = "regfs " + name + " <" + name + "@example.com>";
  if (!Shell(gpg + " --pinentry-mode loopback --passphrase '' --quick-gen-key '" + uid +
             "' ed25519 sign never")) {
    return std::nullopt;
  }
  auto listing = Shell(gpg + " --with-colons --list-secret-keys");
  size_t fpr = listing ? listing->find("\nfpr:") : std::string::npos;
  if (fpr == std::string::npos) return std::nullopt;
  size_t start = listing->find_first_not_of(':', fpr + 5);
  GpgKey key{listing->substr(start, listing->find(':', start) - start), dir.Sub(name + ".gpg")};
  if (!Shell(gpg + " --output '" + key.public_path + "' --export " + key.fingerprint)) {
    return std::nullopt;
  }
  return key;
}

TEST(PolicySignedBy, GpgKeysThroughTheKeyring) {
  TempDir tmp("regfs-policy-gpg");
  auto signer = MakeGpgKey(tmp, "signer");
  auto other = MakeGpgKey(tmp, "other");
  if (!signer || !other) GTEST_SKIP() << "gpg is not available";
  const std::string manifest = R"({"schemaVersion":2})";
  const char* old = std::getenv("GNUPGHOME");
  std::string saved = old ? old : "";
  setenv("GNUPGHOME", tmp.Sub("signer-home").c_str(), 1);
  auto blob =
      SignSimpleSigning(DigestOf(manifest), "example.com/ns/app:v1", signer->fingerprint, "");
  auto wrong_digest =
      SignSimpleSigning(DigestOf("{}"), "example.com/ns/app:v1", signer->fingerprint, "");
  if (old) {
    setenv("GNUPGHOME", saved.c_str(), 1);
  } else {
    unsetenv("GNUPGHOME");
  }
  (void)Shell("gpgconf --homedir '" + tmp.Sub("signer-home") + "' --kill all");
  (void)Shell("gpgconf --homedir '" + tmp.Sub("other-home") + "' --kill all");
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(wrong_digest.ok()) << wrong_digest.error().message;
  Signature sig, wrong;
  sig.format = wrong.format = Signature::Format::kSimpleSigning;
  sig.simple_signing = *blob;
  wrong.simple_signing = *wrong_digest;

  auto policy_for = [&](const std::string& key_json) {
    return MustParse(WithDefault(R"({"type":"signedBy","keyType":"GPGKeys",)" + key_json + "}"));
  };
  PolicyImage img{Ref("docker://example.com/ns/app:v1"), manifest, {sig}};
  Policy p = policy_for(R"("keyPath":")" + signer->public_path + "\"");
  PolicyVerdict v = EvaluatePolicy(p, img);
  EXPECT_TRUE(v.accepted) << v.reason;
  EXPECT_EQ(v.accepted_by, "GPG key " + signer->fingerprint);
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_EQ(v.signatures[0].reason, "GPG key " + signer->fingerprint);

  // keyPaths and keyData forms.
  EXPECT_TRUE(EvaluatePolicy(policy_for(R"("keyPaths":[")" + other->public_path + "\",\"" +
                                        signer->public_path + "\"]"),
                             img)
                  .accepted);
  auto data = ReadFileBounded(signer->public_path, 1 << 20);
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(
      EvaluatePolicy(policy_for(R"("keyData":")" + Base64Encode(*data) + "\""), img).accepted);

  // The key not in the policy.
  v = EvaluatePolicy(policy_for(R"("keyPath":")" + other->public_path + "\""), img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signedBy: no signature accepted: signature 1: not verified by the "
                          "policy's keys"),
            std::string::npos)
      << v.reason;

  // Another digest, another identity.
  img.signatures = {wrong};
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signature 1: digest " + DigestOf("{}") + " does not match manifest " +
                          DigestOf(manifest)),
            std::string::npos)
      << v.reason;
  img.signatures = {sig};
  img.ref = Ref("docker://example.com/ns/app:v2");
  v = EvaluatePolicy(p, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("signed identity \"example.com/ns/app:v1\" does not match"),
            std::string::npos)
      << v.reason;

  // A sigstore requirement next to it: both formats must each be satisfied.
  Policy both = MustParse(R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" +
                          signer->public_path + R"("},)" + SigstoreKey("cosign.pub", "") + "]}");
  img.ref = Ref("docker://example.com/ns/app:v1");
  v = EvaluatePolicy(both, img);
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.reason.find("sigstoreSigned: no signature accepted: the image has no sigstore "
                          "signatures (1 of another format, 0 other attachments)"),
            std::string::npos)
      << v.reason;
  // The GPG signature keeps its verdict from the signedBy requirement.
  EXPECT_TRUE(v.signatures[0].accepted) << v.signatures[0].reason;
}

}  // namespace
}  // namespace regfs
