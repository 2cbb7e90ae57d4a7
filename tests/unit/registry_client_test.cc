#include "transports/docker/registry_client.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace regfs {
namespace {

// ---- RegistryErrorText ---------------------------------------------------------------------

TEST(RegistryErrorTextTest, CodeAndMessage) {
  EXPECT_EQ(
      RegistryErrorText(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})"),
      "MANIFEST_UNKNOWN: manifest unknown");
}

TEST(RegistryErrorTextTest, DetailIsAppended) {
  EXPECT_EQ(RegistryErrorText(R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name )"
                              R"(not known to registry","detail":{"name":"x/y"}}]})"),
            R"(NAME_UNKNOWN: repository name not known to registry ({"name":"x/y"}))");
  EXPECT_EQ(
      RegistryErrorText(R"({"errors":[{"code":"DENIED","message":"denied","detail":"no push"}]})"),
      "DENIED: denied (no push)");
  EXPECT_EQ(RegistryErrorText(R"({"errors":[{"code":"DENIED","message":"denied","detail":null}]})"),
            "DENIED: denied");
}

TEST(RegistryErrorTextTest, LongDetailIsCut) {
  const std::string detail(1000, 'd');
  std::string text =
      RegistryErrorText(R"({"errors":[{"code":"C","message":"m","detail":")" + detail + R"("}]})");
  EXPECT_EQ(text.rfind("C: m (" + std::string(300, 'd'), 0), 0u) << text;
  EXPECT_LT(text.size(), 330u);
}

TEST(RegistryErrorTextTest, SeveralErrorsAreJoined) {
  EXPECT_EQ(RegistryErrorText(R"({"errors":[{"code":"A","message":"one"},)"
                              R"({"code":"B","message":"two"}]})"),
            "A: one; B: two");
}

TEST(RegistryErrorTextTest, MessageWithoutCode) {
  EXPECT_EQ(RegistryErrorText(R"({"errors":[{"message":"just a message"}]})"), "just a message");
}

TEST(RegistryErrorTextTest, NotARegistryErrorBodyIsEmpty) {
  for (const char* body : {"", "<html>502 Bad Gateway</html>", "{}", R"({"errors":"x"})",
                           R"({"errors":[]})", R"({"errors":[1,"x",null]})", "[]", "{"}) {
    EXPECT_EQ(RegistryErrorText(body), "") << body;
  }
}

TEST(RegistryErrorTextTest, WrongFieldTypesAreNotExceptions) {
  // The body comes from the server: a numeric code must not throw out of error handling.
  for (const char* body : {R"({"errors":[{"code":401,"message":"unauthorized"}]})",
                           R"({"errors":[{"code":"X","message":["a","b"]}]})",
                           R"({"errors":[{"code":null,"message":null}]})"}) {
    EXPECT_NO_THROW(RegistryErrorText(body)) << body;
  }
}

// ---- ErrnoForStatus ------------------------------------------------------------------------

TEST(ErrnoForStatusTest, DesignMapping) {
  EXPECT_EQ(ErrnoForStatus(400), EINVAL);
  EXPECT_EQ(ErrnoForStatus(401), EACCES);
  EXPECT_EQ(ErrnoForStatus(403), EACCES);
  EXPECT_EQ(ErrnoForStatus(404), ENOENT);
  EXPECT_EQ(ErrnoForStatus(405), EOPNOTSUPP);
  EXPECT_EQ(ErrnoForStatus(501), EOPNOTSUPP);
  EXPECT_EQ(ErrnoForStatus(413), EFBIG);
  EXPECT_EQ(ErrnoForStatus(429), EAGAIN);
}

TEST(ErrnoForStatusTest, ServerErrorsAndOthersAreEio) {
  for (long status : {500L, 502L, 503L, 504L, 599L, 0L, 302L, 418L, 999L}) {
    EXPECT_EQ(ErrnoForStatus(status), EIO) << status;
  }
}

// ---- UrlOrigin -----------------------------------------------------------------------------

TEST(UrlOriginTest, SchemeHostAndPort) {
  EXPECT_EQ(UrlOrigin("https://registry.example.com/v2/ns/app/blobs/sha256:x?y=1"),
            "https://registry.example.com");
  EXPECT_EQ(UrlOrigin("http://127.0.0.1:5000/v2/"), "http://127.0.0.1:5000");
  EXPECT_EQ(UrlOrigin("https://[::1]:5000/v2/"), "https://[::1]:5000");
  EXPECT_EQ(UrlOrigin("https://host"), "https://host");
  EXPECT_EQ(UrlOrigin("https://host?x=/y"), "https://host");
  EXPECT_EQ(UrlOrigin("https://host#frag/x"), "https://host");
}

TEST(UrlOriginTest, DifferentHostsDiffer) {
  EXPECT_NE(UrlOrigin("https://a.example/x"), UrlOrigin("https://b.example/x"));
  EXPECT_NE(UrlOrigin("https://a.example/x"), UrlOrigin("http://a.example/x"));
  EXPECT_NE(UrlOrigin("https://a.example:443/x"), UrlOrigin("https://a.example:8443/x"));
  EXPECT_NE(UrlOrigin("https://a.example/x"), UrlOrigin("https://a.example.evil.com/x"));
}

TEST(UrlOriginTest, NotAnAbsoluteUrl) {
  EXPECT_EQ(UrlOrigin("/v2/ns/app/blobs/uploads/123"), "");
  EXPECT_EQ(UrlOrigin("relative/path"), "");
  EXPECT_EQ(UrlOrigin(""), "");
}

}  // namespace
}  // namespace regfs
