#include "transports/types/image_reference.h"

#include <gtest/gtest.h>

#include <string>

namespace regfs {
namespace {

const std::string kDigest =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

DockerReference MustParseDocker(std::string_view ref) {
  auto r = ParseDockerReference(ref);
  EXPECT_TRUE(r.ok()) << ref << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : DockerReference{};
}

void ExpectDockerInvalid(std::string_view ref) {
  auto r = ParseDockerReference(ref);
  ASSERT_FALSE(r.ok()) << ref << " parsed as " << r->String();
  EXPECT_EQ(r.error().errnum, EINVAL) << ref;
  EXPECT_FALSE(r.error().message.empty());
}

// ---- Docker references -----------------------------------------------------------------------

TEST(ParseDockerReferenceTest, BareNameIsDockerHubLibraryLatest) {
  DockerReference r = MustParseDocker("busybox");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "library/busybox");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_TRUE(r.tag_defaulted);
  EXPECT_EQ(r.digest, "");
  EXPECT_EQ(r.Name(), "docker.io/library/busybox");
  EXPECT_EQ(r.ManifestRef(), "latest");
  EXPECT_EQ(r.String(), "docker.io/library/busybox:latest");
}

TEST(ParseDockerReferenceTest, ExplicitTagIsNotDefaulted) {
  DockerReference r = MustParseDocker("busybox:1.36");
  EXPECT_EQ(r.Name(), "docker.io/library/busybox");
  EXPECT_EQ(r.tag, "1.36");
  EXPECT_FALSE(r.tag_defaulted);

  DockerReference latest = MustParseDocker("busybox:latest");
  EXPECT_EQ(latest.tag, "latest");
  EXPECT_FALSE(latest.tag_defaulted);
}

TEST(ParseDockerReferenceTest, DockerHubNamespacedRepositoryGetsNoLibraryPrefix) {
  DockerReference r = MustParseDocker("someuser/app:v1");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "someuser/app");
  EXPECT_EQ(r.tag, "v1");

  DockerReference deep = MustParseDocker("a/b/c");
  EXPECT_EQ(deep.Name(), "docker.io/a/b/c");
}

TEST(ParseDockerReferenceTest, ExplicitDockerIoAndIndexDockerIo) {
  EXPECT_EQ(MustParseDocker("docker.io/busybox").String(), "docker.io/library/busybox:latest");
  EXPECT_EQ(MustParseDocker("docker.io/library/busybox").String(),
            "docker.io/library/busybox:latest");
  DockerReference idx = MustParseDocker("index.docker.io/busybox:1");
  EXPECT_EQ(idx.registry, "docker.io");
  EXPECT_EQ(idx.repository, "library/busybox");
  EXPECT_EQ(idx.tag, "1");
  EXPECT_EQ(MustParseDocker("index.docker.io/user/app").Name(), "docker.io/user/app");
}

TEST(ParseDockerReferenceTest, HostWithPortAndTag) {
  DockerReference r = MustParseDocker("127.0.0.1:5000/team/app:v2.1");
  EXPECT_EQ(r.registry, "127.0.0.1:5000");
  EXPECT_EQ(r.repository, "team/app");
  EXPECT_EQ(r.tag, "v2.1");
  EXPECT_FALSE(r.tag_defaulted);
  EXPECT_EQ(r.String(), "127.0.0.1:5000/team/app:v2.1");
}

TEST(ParseDockerReferenceTest, HostWithPortWithoutTagDefaultsLatest) {
  // The ':' of the port must not be taken for a tag separator.
  DockerReference r = MustParseDocker("localhost:5000/app");
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.repository, "app");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_TRUE(r.tag_defaulted);
}

TEST(ParseDockerReferenceTest, DottedHostWithoutPort) {
  DockerReference r = MustParseDocker("quay.io/prometheus/node-exporter:v1.6.0");
  EXPECT_EQ(r.registry, "quay.io");
  EXPECT_EQ(r.repository, "prometheus/node-exporter");
  EXPECT_EQ(r.tag, "v1.6.0");
}

TEST(ParseDockerReferenceTest, IPv6Registry) {
  DockerReference r = MustParseDocker("[::1]:5000/repo");
  EXPECT_EQ(r.registry, "[::1]:5000");
  EXPECT_EQ(r.repository, "repo");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_TRUE(r.tag_defaulted);

  DockerReference tagged = MustParseDocker("[::1]:5000/ns/repo:t");
  EXPECT_EQ(tagged.registry, "[::1]:5000");
  EXPECT_EQ(tagged.repository, "ns/repo");
  EXPECT_EQ(tagged.tag, "t");

  DockerReference no_port = MustParseDocker("[fe80::1]/repo");
  EXPECT_EQ(no_port.registry, "[fe80::1]");
  EXPECT_EQ(no_port.repository, "repo");
}

TEST(ParseDockerReferenceTest, LocalhostIsARegistryNotADockerHubNamespace) {
  DockerReference r = MustParseDocker("localhost/repo");
  EXPECT_EQ(r.registry, "localhost");
  EXPECT_EQ(r.repository, "repo");  // no "library/" outside Docker Hub
  EXPECT_EQ(r.tag, "latest");
}

TEST(ParseDockerReferenceTest, FirstComponentWithoutDotOrColonIsANamespace) {
  DockerReference r = MustParseDocker("myregistry/repo");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "myregistry/repo");
}

TEST(ParseDockerReferenceTest, Digest) {
  DockerReference r = MustParseDocker("busybox@" + kDigest);
  EXPECT_EQ(r.Name(), "docker.io/library/busybox");
  EXPECT_EQ(r.digest, kDigest);
  EXPECT_EQ(r.tag, "");
  EXPECT_FALSE(r.tag_defaulted);
  EXPECT_EQ(r.ManifestRef(), kDigest);
  EXPECT_EQ(r.String(), "docker.io/library/busybox@" + kDigest);

  DockerReference ported = MustParseDocker("localhost:5000/app@" + kDigest);
  EXPECT_EQ(ported.registry, "localhost:5000");
  EXPECT_EQ(ported.repository, "app");
  EXPECT_EQ(ported.tag, "");
  EXPECT_EQ(ported.digest, kDigest);
}

TEST(ParseDockerReferenceTest, TagAndDigest) {
  DockerReference r = MustParseDocker("registry.example.com:443/ns/app:1.0@" + kDigest);
  EXPECT_EQ(r.registry, "registry.example.com:443");
  EXPECT_EQ(r.repository, "ns/app");
  EXPECT_EQ(r.tag, "1.0");
  EXPECT_EQ(r.digest, kDigest);
  EXPECT_FALSE(r.tag_defaulted);
  EXPECT_EQ(r.ManifestRef(), kDigest);  // the digest wins
  EXPECT_EQ(r.String(), "registry.example.com:443/ns/app:1.0@" + kDigest);
}

TEST(ParseDockerReferenceTest, RepositorySeparators) {
  EXPECT_EQ(MustParseDocker("ns/a.b_c__d-e---f").repository, "ns/a.b_c__d-e---f");
  EXPECT_EQ(MustParseDocker("quay.io/a.b_c__d-e---f/g").repository, "a.b_c__d-e---f/g");
}

TEST(ParseDockerReferenceTest, UppercaseRepositoryIsRejected) {
  ExpectDockerInvalid("Busybox");
  ExpectDockerInvalid("busyBox:latest");
  ExpectDockerInvalid("docker.io/Library/busybox");
  ExpectDockerInvalid("quay.io/ns/App");
  ExpectDockerInvalid("localhost:5000/REPO:tag");
  auto r = ParseDockerReference("quay.io/ns/App");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lowercase"), std::string::npos) << r.error().message;
}

TEST(ParseDockerReferenceTest, UppercaseFirstComponentIsTakenForAHost) {
  // As containers/image: a first component with uppercase letters cannot be a repository
  // component, so it names a registry.
  DockerReference r = MustParseDocker("MyHost/repo");
  EXPECT_EQ(r.registry, "MyHost");
  EXPECT_EQ(r.repository, "repo");
}

TEST(ParseDockerReferenceTest, BadRepositoryComponents) {
  ExpectDockerInvalid("-busybox");
  ExpectDockerInvalid("busybox-");
  ExpectDockerInvalid("a..b");
  ExpectDockerInvalid("a___b");
  ExpectDockerInvalid("a.-b");
  ExpectDockerInvalid("ns//repo");
  ExpectDockerInvalid("ns/repo/");
  ExpectDockerInvalid("/repo");
  ExpectDockerInvalid("quay.io/");
  ExpectDockerInvalid("quay.io/ns/r%po");
  ExpectDockerInvalid("quay.io/ns/ré");
  ExpectDockerInvalid("repo name");
}

TEST(ParseDockerReferenceTest, BadTags) {
  ExpectDockerInvalid("busybox:");
  ExpectDockerInvalid("busybox:-tag");
  ExpectDockerInvalid("busybox:.tag");
  ExpectDockerInvalid("busybox:ta/g");  // a ':' before the last '/' is a port, and "ta" is not one
  ExpectDockerInvalid("busybox:t@g");
  ExpectDockerInvalid("busybox:tag:tag");
  ExpectDockerInvalid("busybox:" + std::string(129, 'a'));
  EXPECT_EQ(MustParseDocker("busybox:" + std::string(128, 'a')).tag, std::string(128, 'a'));
  EXPECT_EQ(MustParseDocker("busybox:_Tag.1-x").tag, "_Tag.1-x");
}

TEST(ParseDockerReferenceTest, BadDigests) {
  const std::string hex = kDigest.substr(7);
  ExpectDockerInvalid("busybox@");
  ExpectDockerInvalid("busybox@sha256:abc");
  ExpectDockerInvalid("busybox@sha256:" + std::string(64, 'A'));
  ExpectDockerInvalid("busybox@sha512:" + std::string(128, 'a'));
  ExpectDockerInvalid("busybox@" + hex);
  ExpectDockerInvalid("busybox@" + kDigest + "@" + kDigest);
  ExpectDockerInvalid("busybox:tag@");
  ExpectDockerInvalid("@" + kDigest);
}

TEST(ParseDockerReferenceTest, EmptyAndDegenerateReferences) {
  ExpectDockerInvalid("");
  ExpectDockerInvalid("//");
  ExpectDockerInvalid(":");
  ExpectDockerInvalid(":latest");
  ExpectDockerInvalid("/");
}

TEST(ParseDockerReferenceTest, BadRegistryHosts) {
  ExpectDockerInvalid("bad_host.example.com/repo");
  ExpectDockerInvalid("-bad.example.com/repo");
  ExpectDockerInvalid("host.:5000/repo");
  ExpectDockerInvalid("host:/repo");
  ExpectDockerInvalid("host:port/repo");
  ExpectDockerInvalid("host:123456/repo");
  ExpectDockerInvalid("[::1/repo");
  ExpectDockerInvalid("[not-ipv6]:5000/repo");
}

TEST(ParseDockerReferenceTest, NameTooLong) {
  std::string long_repo;
  while (long_repo.size() < 260) long_repo += "abcdefghi/";
  long_repo += "x";
  ExpectDockerInvalid("quay.io/" + long_repo);
}

TEST(ParseDockerReferenceTest, LeadingDoubleSlashIsAccepted) {
  // The part after "docker:" as ParseImageReference passes it.
  DockerReference r = MustParseDocker("//quay.io/ns/app:1");
  EXPECT_EQ(r.String(), "quay.io/ns/app:1");
}

// ---- Piece validators ---------------------------------------------------------------------------

TEST(IsValidRegistryHostTest, AcceptsHostsPortsAndBracketedIPv6) {
  for (const char* ok : {"docker.io", "quay.io", "localhost", "localhost:5000", "127.0.0.1",
                         "127.0.0.1:5000", "my-registry.example.com:443", "[::1]", "[::1]:5000",
                         "[2001:db8::1]:5000", "Registry.Example.COM", "a", "host:0"}) {
    EXPECT_TRUE(IsValidRegistryHost(ok)) << ok;
  }
}

TEST(IsValidRegistryHostTest, RejectsMalformedHosts) {
  for (const char* bad :
       {"",         ":5000",     "host:",  "host:port", "host:123456", "host:-1",
        "host:5:5", "-host",     "host-",  "ho_st",     "a..b",        ".host",
        "host.",    "[::1",      "[::1]:", "[::1]x",    "[]",          "[zz::1]:5000",
        "::1",      "host/path", "ho st",  "host:50 00"}) {
    EXPECT_FALSE(IsValidRegistryHost(bad)) << bad;
  }
  EXPECT_FALSE(IsValidRegistryHost(std::string(256, 'a')));
}

TEST(IsValidRepositoryComponentTest, Separators) {
  for (const char* ok : {"a", "busybox", "a0", "0a", "a.b", "a_b", "a__b", "a-b", "a--b", "a----b",
                         "a.b_c__d-e", "1.2.3"}) {
    EXPECT_TRUE(IsValidRepositoryComponent(ok)) << ok;
  }
  for (const char* bad :
       {"",     ".",    "-",    "_",    "a.", ".a", "a-",  "-a",  "_a",  "a_",  "a..b", "a___b",
        "a._b", "a.-b", "a-.b", "a_-b", "A",  "aB", "a b", "a/b", "a:b", "a@b", "a+b"}) {
    EXPECT_FALSE(IsValidRepositoryComponent(bad)) << bad;
  }
}

TEST(IsValidTagTest, TagGrammar) {
  for (const char* ok : {"latest", "1", "v1.2.3", "_x", "A-b_C.d", "sha256-abc.sig"}) {
    EXPECT_TRUE(IsValidTag(ok)) << ok;
  }
  for (const char* bad : {"", "-x", ".x", "a/b", "a:b", "a@b", "a b", "a+b"}) {
    EXPECT_FALSE(IsValidTag(bad)) << bad;
  }
  EXPECT_TRUE(IsValidTag(std::string(128, 'x')));
  EXPECT_FALSE(IsValidTag(std::string(129, 'x')));
}

TEST(IsLoopbackHostTest, Loopback) {
  for (const char* yes : {"127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80", "127.255.255.255",
                          "localhost", "localhost:5000", "[::1]", "[::1]:5000"}) {
    EXPECT_TRUE(IsLoopbackHost(yes)) << yes;
  }
}

TEST(IsLoopbackHostTest, NotLoopback) {
  for (const char* no : {"docker.io", "quay.io:443", "128.0.0.1", "10.0.0.1:5000", "0.0.0.0",
                         "126.255.255.255", "[::2]:5000", "[fe80::1]", "localhost.example.com",
                         "mylocalhost", "127.0.0.1.nip.io:5000", "127.example.com", "[::1", ""}) {
    EXPECT_FALSE(IsLoopbackHost(no)) << no;
  }
}

TEST(IsLoopbackHostTest, ExpandedIPv6LoopbackIsLoopback) {
  // "::1" written out in full is the same address.
  EXPECT_TRUE(IsLoopbackHost("[0:0:0:0:0:0:0:1]:5000"));
}

// ---- Transport references -----------------------------------------------------------------------

TEST(ParseImageReferenceTest, Docker) {
  auto r = ParseImageReference("docker://busybox");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kDocker);
  EXPECT_EQ(r->docker.String(), "docker.io/library/busybox:latest");
  EXPECT_TRUE(r->docker.tag_defaulted);
  EXPECT_EQ(r->String(), "docker://docker.io/library/busybox:latest");

  auto full = ParseImageReference("docker://127.0.0.1:5000/ns/app:v1@" + kDigest);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->docker.registry, "127.0.0.1:5000");
  EXPECT_EQ(full->docker.repository, "ns/app");
  EXPECT_EQ(full->docker.tag, "v1");
  EXPECT_EQ(full->docker.digest, kDigest);
  EXPECT_EQ(full->String(), "docker://127.0.0.1:5000/ns/app:v1@" + kDigest);
}

TEST(ParseImageReferenceTest, DockerNeedsTheDoubleSlash) {
  for (const char* bad : {"docker:busybox", "docker:/busybox", "docker:", "docker://",
                          "docker:///busybox", "docker://Busybox", "docker://busybox:"}) {
    auto r = ParseImageReference(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL) << bad;
  }
  auto r = ParseImageReference("docker:busybox");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("docker://"), std::string::npos) << r.error().message;
}

TEST(ParseImageReferenceTest, Dir) {
  auto r = ParseImageReference("dir:/tmp/some image");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kDir);
  EXPECT_EQ(r->path, "/tmp/some image");
  EXPECT_EQ(r->String(), "dir:/tmp/some image");

  // The path is taken whole, colons included.
  auto colon = ParseImageReference("dir:relative/a:b");
  ASSERT_TRUE(colon.ok()) << colon.error().message;
  EXPECT_EQ(colon->path, "relative/a:b");

  auto empty = ParseImageReference("dir:");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().errnum, EINVAL);
}

TEST(ParseImageReferenceTest, OciWithRef) {
  auto r = ParseImageReference("oci:/tmp/layout:v1.0");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kOci);
  EXPECT_EQ(r->path, "/tmp/layout");
  EXPECT_EQ(r->oci_ref, "v1.0");
  EXPECT_EQ(r->String(), "oci:/tmp/layout:v1.0");
}

TEST(ParseImageReferenceTest, OciWithoutRef) {
  auto r = ParseImageReference("oci:/tmp/layout");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kOci);
  EXPECT_EQ(r->path, "/tmp/layout");
  EXPECT_EQ(r->oci_ref, "");
  EXPECT_EQ(r->String(), "oci:/tmp/layout");
}

TEST(ParseImageReferenceTest, OciMalformed) {
  for (const char* bad : {"oci:", "oci::ref", "oci:/tmp/layout:"}) {
    auto r = ParseImageReference(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL) << bad;
  }
}

TEST(ParseImageReferenceTest, UnknownTransport) {
  for (const char* bad : {"sif:/tmp/x.sif", "containers-storage:busybox", "DOCKER://busybox",
                          "http://example.com/x", ":busybox"}) {
    auto r = ParseImageReference(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL) << bad;
  }
  auto r = ParseImageReference("containers-storage:busybox");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown transport"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("docker-archive:"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("docker-daemon:"), std::string::npos) << r.error().message;
}

TEST(ParseImageReferenceTest, DockerArchiveAsContainersImageParsesIt) {
  auto plain = ParseImageReference("docker-archive:/tmp/x.tar");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->transport, Transport::kDockerArchive);
  EXPECT_EQ(plain->path, "/tmp/x.tar");
  EXPECT_FALSE(plain->archive_tag);
  EXPECT_EQ(plain->archive_index, -1);
  EXPECT_EQ(plain->String(), "docker-archive:/tmp/x.tar");

  auto tagged = ParseImageReference("docker-archive:/tmp/x.tar:busybox");
  ASSERT_TRUE(tagged.ok());
  ASSERT_TRUE(tagged->archive_tag);
  EXPECT_EQ(tagged->archive_tag->String(), "docker.io/library/busybox:latest");
  EXPECT_EQ(tagged->String(), "docker-archive:/tmp/x.tar:docker.io/library/busybox:latest");
  auto hosted = ParseImageReference("docker-archive:x.tar:127.0.0.1:5000/a/b:v1");
  ASSERT_TRUE(hosted.ok());
  EXPECT_EQ(hosted->path, "x.tar");
  EXPECT_EQ(hosted->archive_tag->String(), "127.0.0.1:5000/a/b:v1");

  auto indexed = ParseImageReference("docker-archive:x.tar:@3");
  ASSERT_TRUE(indexed.ok());
  EXPECT_EQ(indexed->archive_index, 3);
  EXPECT_EQ(indexed->String(), "docker-archive:x.tar:@3");

  for (const char* bad :
       {"docker-archive:", "docker-archive::busybox", "docker-archive:x:@", "docker-archive:x:@-1",
        "docker-archive:x:@a", "docker-archive:x:", "docker-archive:x:Busybox",
        "docker-archive:x:busybox@sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000"}) {
    auto r = ParseImageReference(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(ParseImageReferenceTest, OciArchive) {
  auto r = ParseImageReference("oci-archive:/tmp/x.tar:v1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->transport, Transport::kOciArchive);
  EXPECT_EQ(r->path, "/tmp/x.tar");
  EXPECT_EQ(r->oci_ref, "v1");
  EXPECT_EQ(r->String(), "oci-archive:/tmp/x.tar:v1");
  EXPECT_FALSE(ParseImageReference("oci-archive:").ok());
  EXPECT_FALSE(ParseImageReference("oci-archive:x.tar:").ok());
}

TEST(ParseImageReferenceTest, NoTransport) {
  for (const char* bad : {"", "busybox", "/tmp/layout"}) {
    auto r = ParseImageReference(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL) << bad;
  }
}

// ---- docker-daemon: references ---------------------------------------------------------------

TEST(ParseImageReferenceTest, DaemonNameAndTag) {
  auto r = ParseImageReference("docker-daemon:busybox:1.36");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kDockerDaemon);
  EXPECT_EQ(r->docker.Name(), "docker.io/library/busybox");
  EXPECT_EQ(r->docker.tag, "1.36");
  EXPECT_EQ(r->daemon_image_id, "");
  EXPECT_EQ(r->String(), "docker-daemon:busybox:1.36");

  auto local = ParseImageReference("docker-daemon:localhost:5000/team/app:v2");
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_EQ(local->docker.registry, "localhost:5000");
  EXPECT_EQ(local->docker.repository, "team/app");
  EXPECT_EQ(local->String(), "docker-daemon:localhost:5000/team/app:v2");

  auto hub = ParseImageReference("docker-daemon:docker.io/someone/app:v2");
  ASSERT_TRUE(hub.ok()) << hub.error().message;
  EXPECT_EQ(hub->String(), "docker-daemon:someone/app:v2");
}

// The repository library/sha384 with a 96-hex tag is a name; its familiar form "sha384:<hex>"
// would be refused as a digest, so it prints whole and parses back (found by fuzzing).
TEST(ParseImageReferenceTest, DaemonNameThatLooksLikeADigestPrintsWhole) {
  const std::string tag(96, 'e');
  auto r = ParseImageReference("docker-daemon:library/sha384:" + tag);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->String(), "docker-daemon:docker.io/library/sha384:" + tag);
  auto again = ParseImageReference(r->String());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->String(), r->String());
  EXPECT_FALSE(ParseImageReference("docker-daemon:sha384:" + tag).ok());
}

TEST(ParseImageReferenceTest, DaemonNameAndDigest) {
  auto r = ParseImageReference("docker-daemon:busybox@" + kDigest);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->docker.digest, kDigest);
  EXPECT_EQ(r->docker.tag, "");
  EXPECT_EQ(r->String(), "docker-daemon:busybox@" + kDigest);
}

TEST(ParseImageReferenceTest, DaemonImageId) {
  auto r = ParseImageReference("docker-daemon:" + kDigest);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kDockerDaemon);
  EXPECT_EQ(r->daemon_image_id, kDigest);
  EXPECT_EQ(r->String(), "docker-daemon:" + kDigest);
}

TEST(ParseImageReferenceTest, DaemonRefusesWhatContainersImageRefuses) {
  const std::string hex = kDigest.substr(7);
  struct Case {
    std::string ref, why;
  };
  for (const Case& c : std::vector<Case>{
           {"busybox", "neither a tag nor a digest"},
           {"localhost:5000/app", "neither a tag nor a digest"},
           {"busybox:v1@" + kDigest, "both a tag and a digest"},
           {"sha512:" + hex + hex, "only digest algorithm sha256"},
           {"sha256:abc", "reserved"},
           {hex, "64-byte hexadecimal"},
           {"Busybox:v1", "lowercase"},
           {"", "expected NAME:TAG"},
           {"//busybox:v1", "expected NAME:TAG"},
       }) {
    auto r = ParseImageReference("docker-daemon:" + c.ref);
    ASSERT_FALSE(r.ok()) << c.ref << " parsed as " << r->String();
    EXPECT_EQ(r.error().errnum, EINVAL) << c.ref;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos) << r.error().message;
  }
}

TEST(ParseImageReferenceTest, DaemonOtherAlgorithmsAreNamesWhenTheyAreNotDigests) {
  // "sha512:abc" is no sha512 digest; as containers/image reads it, it is the tag abc of
  // docker.io/library/sha512.
  auto r = ParseImageReference("docker-daemon:sha512:abc");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->docker.repository, "library/sha512");
  EXPECT_EQ(r->docker.tag, "abc");
}

}  // namespace
}  // namespace regfs
