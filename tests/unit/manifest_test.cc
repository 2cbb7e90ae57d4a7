#include "transports/manifest/manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace regfs {
namespace {

std::string D(char c) { return "sha256:" + std::string(64, c); }

const std::string kOciManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": ")" + D('1') + R"(",
    "size": 1234
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": ")" + D('2') + R"(",
      "size": 100,
      "annotations": {"org.example.key": "value", "ignored.number": 5}
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar",
      "digest": ")" + D('3') + R"(",
      "size": 0,
      "urls": ["https://example.com/blob", 7]
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2023-01-01T00:00:00Z"}
})";

const std::string kOciIndex = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": ")" + D('a') + R"(",
      "size": 500,
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": ")" + D('b') + R"(",
      "size": 501,
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": ")" + D('c') + R"(",
      "size": 502,
      "platform": {"architecture": "unknown", "os": "unknown"},
      "annotations": {"vnd.docker.reference.type": "attestation-manifest"}
    }
  ]
})";

const std::string kDockerV2S2 = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 1469,
    "digest": ")" + D('4') + R"("
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 2591575,
      "digest": ")" + D('5') + R"("
    }
  ]
})";

const std::string kDockerList = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 527,
      "digest": ")" + D('6') + R"(",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 527,
      "digest": ")" + D('7') + R"(",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 528,
      "digest": ")" + D('8') + R"(",
      "platform": {"architecture": "amd64", "os": "linux"}
    }
  ]
})";

// A signed schema 1 manifest (application/vnd.docker.distribution.manifest.v1+prettyjws).
const std::string kSchema1Signed = R"({
   "schemaVersion": 1,
   "name": "library/hello-world",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [{"blobSum": ")" + D('9') +
                                   R"("}],
   "history": [{"v1Compatibility": "{}"}],
   "signatures": [{"header": {"alg": "ES256"}, "signature": "abc", "protected": "def"}]
})";

const std::string kSchema1Unsigned = R"({
   "schemaVersion": 1,
   "name": "library/hello-world",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [{"blobSum": ")" + D('9') +
                                     R"("}],
   "history": [{"v1Compatibility": "{}"}]
})";

Manifest MustParse(std::string_view bytes, std::string_view hint = {}) {
  auto m = ParseManifest(bytes, hint);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? *m : Manifest{};
}

void ExpectRefused(std::string_view bytes, int errnum, std::string_view message_part = {},
                   std::string_view hint = {}) {
  auto m = ParseManifest(bytes, hint);
  ASSERT_FALSE(m.ok()) << bytes;
  EXPECT_EQ(m.error().errnum, errnum) << m.error().message;
  EXPECT_NE(m.error().message.find(message_part), std::string::npos) << m.error().message;
}

// A v2s2 manifest with its single layer descriptor replaced.
std::string WithLayer(const std::string& layer) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         D('1') + R"(","size":1},"layers":[)" + layer + "]}";
}

// ---- Parsing --------------------------------------------------------------------------------

TEST(ParseManifestTest, OciManifest) {
  Manifest m = MustParse(kOciManifest);
  EXPECT_EQ(m.media_type, media::kOciManifest);
  EXPECT_FALSE(m.is_index);
  EXPECT_EQ(m.config.media_type, "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(m.config.digest, D('1'));
  EXPECT_EQ(m.config.size, 1234);
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(m.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(m.layers[0].digest, D('2'));
  EXPECT_EQ(m.layers[0].size, 100);
  EXPECT_EQ(m.layers[0].annotations.size(), 1u);
  EXPECT_EQ(m.layers[0].annotations.at("org.example.key"), "value");
  EXPECT_FALSE(m.layers[0].platform.has_value());
  EXPECT_EQ(m.layers[1].digest, D('3'));
  EXPECT_EQ(m.layers[1].size, 0);
  ASSERT_EQ(m.layers[1].urls.size(), 1u);
  EXPECT_EQ(m.layers[1].urls[0], "https://example.com/blob");
  EXPECT_TRUE(m.manifests.empty());
}

TEST(ParseManifestTest, OciIndex) {
  Manifest m = MustParse(kOciIndex);
  EXPECT_EQ(m.media_type, media::kOciIndex);
  EXPECT_TRUE(m.is_index);
  EXPECT_TRUE(m.layers.empty());
  ASSERT_EQ(m.manifests.size(), 3u);
  EXPECT_EQ(m.manifests[0].digest, D('a'));
  EXPECT_EQ(m.manifests[0].size, 500);
  EXPECT_EQ(m.manifests[0].media_type, media::kOciManifest);
  ASSERT_TRUE(m.manifests[0].platform.has_value());
  EXPECT_EQ(m.manifests[0].platform->architecture, "amd64");
  EXPECT_EQ(m.manifests[0].platform->os, "linux");
  EXPECT_EQ(m.manifests[0].platform->variant, "");
  ASSERT_TRUE(m.manifests[1].platform.has_value());
  EXPECT_EQ(m.manifests[1].platform->variant, "v8");
  EXPECT_EQ(m.manifests[2].annotations.at("vnd.docker.reference.type"), "attestation-manifest");
}

TEST(ParseManifestTest, DockerV2Schema2) {
  Manifest m = MustParse(kDockerV2S2);
  EXPECT_EQ(m.media_type, media::kDockerV2S2);
  EXPECT_FALSE(m.is_index);
  EXPECT_EQ(m.config.digest, D('4'));
  EXPECT_EQ(m.config.size, 1469);
  EXPECT_EQ(m.config.media_type, "application/vnd.docker.container.image.v1+json");
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].digest, D('5'));
  EXPECT_EQ(m.layers[0].size, 2591575);
}

TEST(ParseManifestTest, DockerManifestList) {
  Manifest m = MustParse(kDockerList);
  EXPECT_EQ(m.media_type, media::kDockerList);
  EXPECT_TRUE(m.is_index);
  ASSERT_EQ(m.manifests.size(), 3u);
  EXPECT_EQ(m.manifests[1].digest, D('7'));
  EXPECT_EQ(m.manifests[1].platform->variant, "v7");
  EXPECT_EQ(m.manifests[1].media_type, media::kDockerV2S2);
}

TEST(ParseManifestTest, LargeSizesAreKept) {
  Manifest m = MustParse(WithLayer(R"({"digest":")" + D('2') + R"(","size":8589934592})"));
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].size, int64_t{8589934592});
}

TEST(ParseManifestTest, EmptyLayersIsAccepted) {
  Manifest m = MustParse(WithLayer(""));
  EXPECT_TRUE(m.layers.empty());
}

TEST(ParseManifestTest, MediaTypeFromHintWhenTheBytesDoNotSayIt) {
  std::string no_media_type = kDockerV2S2;
  no_media_type.replace(
      no_media_type.find("\"mediaType\""),
      std::string(R"("mediaType": "application/vnd.docker.distribution.manifest.v2+json",)").size(),
      "");
  ASSERT_EQ(no_media_type.find("distribution.manifest.v2"), std::string::npos);
  Manifest m = MustParse(no_media_type, media::kDockerV2S2);
  EXPECT_EQ(m.media_type, media::kDockerV2S2);
  // Without a hint it is taken for an OCI manifest by its shape.
  EXPECT_EQ(MustParse(no_media_type).media_type, media::kOciManifest);
}

TEST(ParseManifestTest, Schema1SignedIsRefused) {
  ExpectRefused(kSchema1Signed, EINVAL, "schema 1");
  ExpectRefused(kSchema1Signed, EINVAL, "schema 1", media::kDockerV1Signed);
}

TEST(ParseManifestTest, Schema1UnsignedIsRefused) {
  ExpectRefused(kSchema1Unsigned, EINVAL, "schema 1");
  ExpectRefused(kSchema1Unsigned, EINVAL, "schema 1", media::kDockerV1);
}

TEST(ParseManifestTest, Schema1MediaTypeIsRefusedWhateverTheSchemaVersion) {
  ExpectRefused(R"({"schemaVersion":2,"mediaType":")" + std::string(media::kDockerV1) + R"("})",
                EINVAL, "schema 1");
  ExpectRefused(
      R"({"schemaVersion":2,"mediaType":")" + std::string(media::kDockerV1Signed) + R"("})", EINVAL,
      "schema 1");
}

TEST(ParseManifestTest, NotJson) {
  ExpectRefused("", EINVAL, "JSON");
  ExpectRefused("not json", EINVAL, "JSON");
  ExpectRefused("{\"schemaVersion\": 2,", EINVAL, "JSON");
  ExpectRefused(kOciManifest.substr(0, kOciManifest.size() / 2), EINVAL, "JSON");
  ExpectRefused("\xff\xfe{}", EINVAL);
}

TEST(ParseManifestTest, JsonThatIsNotAnObject) {
  ExpectRefused("[]", EINVAL);
  ExpectRefused("2", EINVAL);
  ExpectRefused("\"manifest\"", EINVAL);
  ExpectRefused("null", EINVAL);
}

TEST(ParseManifestTest, SchemaVersionMustBe2) {
  ExpectRefused(
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})",
      EINVAL, "schemaVersion");
  ExpectRefused(R"({"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json"})",
                EINVAL, "schemaVersion");
}

TEST(ParseManifestTest, MalformedSchemaVersionIsAnErrorNotAnException) {
  // A registry can serve anything; a wrong JSON type must give EINVAL, never throw.
  for (const char* sv : {"\"2\"", "null", "[2]", "{}", "true"}) {
    const std::string bytes = R"({"schemaVersion":)" + std::string(sv) +
                              R"(,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
    Result<Manifest> m = MakeError(0, "");
    EXPECT_NO_THROW(m = ParseManifest(bytes)) << bytes;
    EXPECT_FALSE(m.ok()) << bytes;
    EXPECT_NO_THROW(GuessManifestMediaType(bytes)) << bytes;
  }
}

TEST(ParseManifestTest, UnknownMediaTypeIsRefused) {
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.example+json"})", EINVAL,
                "application/vnd.example+json");
  // Neither the bytes nor a hint say what it is.
  ExpectRefused(R"({"schemaVersion":2})", EINVAL);
}

TEST(ParseManifestTest, MissingConfig) {
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                R"("layers":[]})",
                EINVAL, "config");
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                R"("config":"sha256:x","layers":[]})",
                EINVAL, "config");
}

TEST(ParseManifestTest, MissingLayers) {
  const std::string config = R"("config":{"digest":")" + D('1') + R"(","size":1})";
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.)"
                R"(manifest.v2+json",)" +
                    config + "}",
                EINVAL, "layers");
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)" +
                    config + R"(,"layers":{}})",
                EINVAL, "layers");
}

TEST(ParseManifestTest, IndexWithoutManifestsArray) {
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})",
                EINVAL, "manifests");
  ExpectRefused(
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",)"
      R"("manifests":{}})",
      EINVAL, "manifests");
}

TEST(ParseManifestTest, BadDigestInADescriptor) {
  ExpectRefused(WithLayer(R"({"digest":"sha256:abc","size":1})"), EINVAL, "sha256:abc");
  ExpectRefused(WithLayer(R"({"digest":"sha512:)" + std::string(128, 'a') + R"(","size":1})"),
                EINVAL);
  ExpectRefused(WithLayer(R"({"digest":")" + std::string("sha256:") + std::string(64, 'A') +
                          R"(","size":1})"),
                EINVAL);
  ExpectRefused(WithLayer(R"({"size":1})"), EINVAL, "digest");
  ExpectRefused(WithLayer(R"({"digest":5,"size":1})"), EINVAL, "digest");
  ExpectRefused(WithLayer(R"("sha256:abc")"), EINVAL);
  // In an index too.
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                R"("manifests":[{"digest":"sha256:0","size":1}]})",
                EINVAL, "sha256:0");
  // And in the config.
  ExpectRefused(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                R"("config":{"digest":"md5:abc","size":1},"layers":[]})",
                EINVAL, "md5:abc");
}

TEST(ParseManifestTest, BadSizeInADescriptor) {
  ExpectRefused(WithLayer(R"({"digest":")" + D('2') + R"(","size":-1})"), EINVAL, "size");
  ExpectRefused(WithLayer(R"({"digest":")" + D('2') + R"("})"), EINVAL, "size");
  ExpectRefused(WithLayer(R"({"digest":")" + D('2') + R"(","size":"10"})"), EINVAL, "size");
  ExpectRefused(WithLayer(R"({"digest":")" + D('2') + R"(","size":1.5})"), EINVAL, "size");
  // Over INT64_MAX: must not wrap into a valid size.
  ExpectRefused(WithLayer(R"({"digest":")" + D('2') + R"(","size":18446744073709551615})"), EINVAL,
                "size");
}

TEST(ParseManifestTest, MalformedPlatformIsAnErrorOrIgnoredNotAnException) {
  const std::string bytes =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
      R"("manifests":[{"digest":")" +
      D('a') + R"(","size":1,"platform":{"architecture":64,"os":null}}]})";
  EXPECT_NO_THROW({ auto m = ParseManifest(bytes); });
}

TEST(ParseManifestTest, OverFourMiBIsEfbig) {
  std::string big = kOciManifest;
  big.insert(big.size() - 1, std::string(kMaxManifestSize - big.size() + 1, ' '));
  ASSERT_EQ(static_cast<int64_t>(big.size()), kMaxManifestSize + 1);
  ExpectRefused(big, EFBIG, "4 MiB");

  // Exactly at the limit is fine.
  big.erase(big.size() - 2, 1);
  ASSERT_EQ(static_cast<int64_t>(big.size()), kMaxManifestSize);
  EXPECT_TRUE(ParseManifest(big).ok());

  // The size is checked before parsing: garbage over the limit is EFBIG too.
  ExpectRefused(std::string(kMaxManifestSize + 1, 'x'), EFBIG);
}

// ---- Media types ----------------------------------------------------------------------------

TEST(GuessManifestMediaTypeTest, FromTheMediaTypeField) {
  EXPECT_EQ(GuessManifestMediaType(kOciManifest), media::kOciManifest);
  EXPECT_EQ(GuessManifestMediaType(kOciIndex), media::kOciIndex);
  EXPECT_EQ(GuessManifestMediaType(kDockerV2S2), media::kDockerV2S2);
  EXPECT_EQ(GuessManifestMediaType(kDockerList), media::kDockerList);
  // The bytes win over the hint.
  EXPECT_EQ(GuessManifestMediaType(kDockerV2S2, media::kOciManifest), media::kDockerV2S2);
}

TEST(GuessManifestMediaTypeTest, Schema1) {
  EXPECT_EQ(GuessManifestMediaType(kSchema1Signed), media::kDockerV1Signed);
  EXPECT_EQ(GuessManifestMediaType(kSchema1Unsigned), media::kDockerV1);
  // Even when served with another Content-Type.
  EXPECT_EQ(GuessManifestMediaType(kSchema1Signed, "application/json"), media::kDockerV1Signed);
}

TEST(GuessManifestMediaTypeTest, FromTheHint) {
  EXPECT_EQ(
      GuessManifestMediaType(R"({"schemaVersion":2,"config":{},"layers":[]})", media::kDockerV2S2),
      media::kDockerV2S2);
  EXPECT_EQ(GuessManifestMediaType("not json", "application/x-hint"), "application/x-hint");
}

TEST(GuessManifestMediaTypeTest, FromTheShape) {
  EXPECT_EQ(GuessManifestMediaType(R"({"schemaVersion":2,"manifests":[]})"), media::kOciIndex);
  EXPECT_EQ(GuessManifestMediaType(R"({"schemaVersion":2,"config":{},"layers":[]})"),
            media::kOciManifest);
  EXPECT_EQ(GuessManifestMediaType(R"({"schemaVersion":2,"layers":[]})"), media::kOciManifest);
  EXPECT_EQ(GuessManifestMediaType(R"({"schemaVersion":2})"), "");
  EXPECT_EQ(GuessManifestMediaType("not json"), "");
  EXPECT_EQ(GuessManifestMediaType("[]"), "");
}

TEST(IsIndexMediaTypeTest, OnlyIndexes) {
  EXPECT_TRUE(IsIndexMediaType(media::kOciIndex));
  EXPECT_TRUE(IsIndexMediaType(media::kDockerList));
  EXPECT_FALSE(IsIndexMediaType(media::kOciManifest));
  EXPECT_FALSE(IsIndexMediaType(media::kDockerV2S2));
  EXPECT_FALSE(IsIndexMediaType(""));
}

// ---- Platforms ------------------------------------------------------------------------------

TEST(HostPlatformTest, IsLinuxWithAnArchitecture) {
  Platform p = HostPlatform();
  EXPECT_EQ(p.os, "linux");
  EXPECT_FALSE(p.architecture.empty());
#if defined(__x86_64__)
  EXPECT_EQ(p.architecture, "amd64");
  EXPECT_EQ(p.variant, "");
#elif defined(__aarch64__)
  EXPECT_EQ(p.architecture, "arm64");
  EXPECT_EQ(p.variant, "v8");
#endif
}

TEST(ChooseInstanceTest, Amd64) {
  auto d = ChooseInstance(MustParse(kOciIndex), Platform{"amd64", "linux", ""});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('a'));
  EXPECT_EQ(d->size, 500);
}

TEST(ChooseInstanceTest, Arm64WithVariantV8) {
  Manifest index = MustParse(kOciIndex);
  auto d = ChooseInstance(index, Platform{"arm64", "linux", "v8"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('b'));
  // Without a wanted variant, any variant fits.
  auto any = ChooseInstance(index, Platform{"arm64", "linux", ""});
  ASSERT_TRUE(any.ok()) << any.error().message;
  EXPECT_EQ(any->digest, D('b'));
}

TEST(ChooseInstanceTest, Arm64V8MatchesAnInstanceWithoutVariant) {
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciIndex) +
                            R"(","manifests":[{"digest":")" + D('e') +
                            R"(","size":1,"platform":{"architecture":"arm64","os":"linux"}}]})";
  auto d = ChooseInstance(MustParse(index), Platform{"arm64", "linux", "v8"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('e'));
}

TEST(ChooseInstanceTest, ExactVariantPreferredOverTheFirstOfTheArchitecture) {
  auto d = ChooseInstance(MustParse(kDockerList), Platform{"arm", "linux", "v7"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('7'));
  auto v6 = ChooseInstance(MustParse(kDockerList), Platform{"arm", "linux", "v6"});
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->digest, D('6'));
}

TEST(ChooseInstanceTest, OlderArmVariantRunsOnNewerArm) {
  // Only arm/v6 offered: an arm/v7 host runs it (containers/image accepts v7 → v6 → v5).
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciIndex) +
                            R"(","manifests":[{"digest":")" + D('6') +
                            R"(","size":1,"platform":{"architecture":"arm","os":"linux",)"
                            R"("variant":"v6"}}]})";
  auto d = ChooseInstance(MustParse(index), Platform{"arm", "linux", "v7"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('6'));
}

TEST(ChooseInstanceTest, NewerArmVariantDoesNotFitOlderArm) {
  // Only arm/v7 offered: an arm/v6 host can't run it; containers/image finds no image.
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciIndex) +
                            R"(","manifests":[{"digest":")" + D('7') +
                            R"(","size":1,"platform":{"architecture":"arm","os":"linux",)"
                            R"("variant":"v7"}}]})";
  auto d = ChooseInstance(MustParse(index), Platform{"arm", "linux", "v6"});
  ASSERT_FALSE(d.ok()) << "chose " << d->digest;
  EXPECT_EQ(d.error().errnum, ENOENT);
}

TEST(ChooseInstanceTest, ExactVariantPreferredOverAnEarlierEntryWithoutVariant) {
  // containers/image tries the wanted variant first, a no-variant entry only last.
  const std::string index =
      R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciIndex) +
      R"(","manifests":[)"
      R"({"digest":")" +
      D('0') +
      R"(","size":1,"platform":{"architecture":"arm","os":"linux"}},)"
      R"({"digest":")" +
      D('7') + R"(","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7"}}]})";
  auto d = ChooseInstance(MustParse(index), Platform{"arm", "linux", "v7"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, D('7'));
}

TEST(ChooseInstanceTest, NoMatchIsEnoentListingPlatforms) {
  auto d = ChooseInstance(MustParse(kOciIndex), Platform{"s390x", "linux", ""});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().errnum, ENOENT);
  const std::string& msg = d.error().message;
  EXPECT_NE(msg.find("s390x"), std::string::npos) << msg;
  EXPECT_NE(msg.find("linux/amd64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("linux/arm64/v8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown/unknown"), std::string::npos) << msg;
}

TEST(ChooseInstanceTest, OsMustMatch) {
  auto d = ChooseInstance(MustParse(kOciIndex), Platform{"amd64", "windows", ""});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().errnum, ENOENT);
  EXPECT_NE(d.error().message.find("windows"), std::string::npos) << d.error().message;
}

TEST(ChooseInstanceTest, InstancesWithoutPlatformNeverMatch) {
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(media::kOciIndex) +
                            R"(","manifests":[{"digest":")" + D('e') + R"(","size":1}]})";
  auto d = ChooseInstance(MustParse(index), Platform{"amd64", "linux", ""});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().errnum, ENOENT);
}

TEST(ChooseInstanceTest, EmptyIndexIsEnoent) {
  auto d = ChooseInstance(MustParse(R"({"schemaVersion":2,"mediaType":")" +
                                    std::string(media::kOciIndex) + R"(","manifests":[]})"),
                          Platform{"amd64", "linux", ""});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().errnum, ENOENT);
}

}  // namespace
}  // namespace regfs
