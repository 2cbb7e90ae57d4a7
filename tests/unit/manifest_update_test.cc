#include "transports/copy/manifest_update.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "transports/util/digest.h"

namespace regfs {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');
const std::string kD = "sha256:" + std::string(64, 'd');

RawManifest Raw(const std::string& bytes) {
  return RawManifest{bytes, GuessManifestMediaType(bytes), DigestOf(bytes)};
}

std::string OciManifest() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         kA +
         R"(","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",)"
         R"("digest":")" +
         kB +
         R"(","size":20,"annotations":{"z":"1","a":"2"}}],)"
         R"("annotations":{"zz":"1","aa":"2"},"unknown":true})";
}

TEST(ManifestUpdateTest, LayerVariantsFollowContainersImagesTables) {
  EXPECT_EQ(
      *LayerMediaTypeVariant(media::kOciManifest, "application/vnd.oci.image.layer.v1.tar+gzip",
                             Compression::kZstd),
      "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(
      *LayerMediaTypeVariant(media::kDockerV2S2, "application/vnd.docker.image.rootfs.diff.tar",
                             Compression::kGzip),
      "application/vnd.docker.image.rootfs.diff.tar.gzip");
  auto zstd = LayerMediaTypeVariant(
      media::kDockerV2S2, "application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kZstd);
  ASSERT_FALSE(zstd.ok());
  EXPECT_NE(zstd.error().message.find("zstd compression is not supported"), std::string::npos);
  EXPECT_FALSE(FormatCarries(media::kDockerV2S2, Compression::kZstd));
  EXPECT_TRUE(FormatCarries(media::kOciManifest, Compression::kZstd));
}

TEST(ManifestUpdateTest, NothingChangedIsTheSameBytes) {
  RawManifest src = Raw(OciManifest());
  Manifest parsed = *ParseManifest(src.bytes);
  ManifestUpdate update{std::string(media::kOciManifest), {{kB, 20, Compression::kGzip}}, {}};
  auto out = UpdateImageManifest(src, parsed, update);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->bytes, src.bytes);
}

TEST(ManifestUpdateTest, NewLayersAreWrittenAsGoWritesTheStruct) {
  RawManifest src = Raw(OciManifest());
  Manifest parsed = *ParseManifest(src.bytes);
  ManifestUpdate update{std::string(media::kOciManifest), {{kC, 15, Compression::kZstd}}, {}};
  auto out = UpdateImageManifest(src, parsed, update);
  ASSERT_TRUE(out.ok()) << out.error().message;
  // Struct field order, sorted annotations, the layer's own annotations and unknown fields gone.
  EXPECT_EQ(
      out->bytes,
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
          kA +
          R"(","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd",)"
          R"("digest":")" +
          kC + R"(","size":15}],"annotations":{"aa":"2","zz":"1"}})");
  EXPECT_EQ(out->digest, DigestOf(out->bytes));
}

TEST(ManifestUpdateTest, OciToV2s2RefusesZstdAndArtifacts) {
  std::string zstd = OciManifest();
  zstd.replace(zstd.find("tar+gzip"), 8, "tar+zstd");
  RawManifest src = Raw(zstd);
  Manifest parsed = *ParseManifest(src.bytes);
  auto out = UpdateImageManifest(src, parsed, {std::string(media::kDockerV2S2), {}, {}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("zstd compression is not supported for docker images"),
            std::string::npos);
  std::string artifact = OciManifest();
  artifact.replace(artifact.find("image.config.v1+json"), 20, "example.artifact+json");
  RawManifest a = Raw(artifact);
  EXPECT_FALSE(
      UpdateImageManifest(a, *ParseManifest(a.bytes), {std::string(media::kDockerV2S2), {}, {}})
          .ok());
}

TEST(ManifestUpdateTest, OciToV2s2KeepsTheConfigAndMapsLayerTypes) {
  RawManifest src = Raw(OciManifest());
  auto out = UpdateImageManifest(src, *ParseManifest(src.bytes),
                                 {std::string(media::kDockerV2S2), {}, {}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(
      out->bytes,
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
      R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,)"
      R"("digest":")" +
          kA +
          R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",)"
          R"("size":20,"digest":")" +
          kB + R"("}]})");
}

TEST(ManifestUpdateTest, DockerConfigBecomesTheOciStruct) {
  std::string docker =
      R"({"architecture":"amd64","os":"linux","created":"2024-05-06T07:08:09.120000000Z",)"
      R"("container":"abc","docker_version":"20.10","config":{"Hostname":"h","Env":["A=<1>"],)"
      R"("Cmd":["sh"],"Labels":{"b":"1","a":"2"},"ExposedPorts":{"80/tcp":{}},"Tty":false},)"
      R"("rootfs":{"type":"layers","diff_ids":[")" +
      kD +
      R"("]},"history":[{"created":"2024-05-06T07:08:09+00:00","created_by":"x",)"
      R"("empty_layer":true}]})";
  auto oci = OciConfigFromDocker(docker);
  ASSERT_TRUE(oci.ok()) << oci.error().message;
  EXPECT_EQ(*oci,
            R"({"created":"2024-05-06T07:08:09.12Z","architecture":"amd64","os":"linux",)"
            R"("config":{"ExposedPorts":{"80/tcp":{}},"Env":["A=\u003c1\u003e"],"Cmd":["sh"],)"
            R"("Labels":{"a":"2","b":"1"}},"rootfs":{"type":"layers","diff_ids":[")" +
                kD +
                R"("]},"history":[{"created":"2024-05-06T07:08:09Z","created_by":"x",)"
                R"("empty_layer":true}]})");
  EXPECT_FALSE(OciConfigFromDocker("[1]").ok());
}

TEST(ManifestUpdateTest, IndexNamesTheReplacedInstances) {
  std::string index = R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.)"
                      R"(distribution.manifest.v2+json","size":5,"digest":")" +
                      kA + R"(","platform":{"os":"linux","architecture":"amd64"}}]})";
  RawManifest raw{index, std::string(media::kOciIndex), DigestOf(index)};
  RawManifest inst{"{}", std::string(media::kOciManifest), kB};
  auto out = UpdateIndexInstances(raw, {{kA, inst}});
  ASSERT_TRUE(out.ok());
  auto j = nlohmann::json::parse(out->bytes);
  EXPECT_EQ(j["manifests"][0]["digest"], kB);
  EXPECT_EQ(j["manifests"][0]["size"], 2);
  EXPECT_EQ(j["manifests"][0]["mediaType"], media::kOciManifest);
  EXPECT_EQ(j["manifests"][0]["platform"]["os"], "linux");
}

}  // namespace
}  // namespace regfs
