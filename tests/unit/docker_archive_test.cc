#include "transports/archive/docker_archive.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/testing/temp_dir.h"
#include "transports/archive/tar_writer.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using testing::TempDir;

// A sequential sink into a string, as a request body is: it cannot be rewritten.
class StringSink final : public ArchiveSink {
 public:
  explicit StringSink(std::string* out, bool* committed) : out_(out), committed_(committed) {}
  Status Write(const char* data, size_t n) override {
    out_->append(data, n);
    return Ok();
  }
  Status Commit() override {
    *committed_ = true;
    return Ok();
  }

 private:
  std::string* out_;
  bool* committed_;
};

const std::string kLayer1(70000, 'a');
const std::string kLayer2(513, 'b');

std::string Config() {
  return "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=<&>\"]},"
         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" +
         DigestOf(kLayer1) + "\",\"" + DigestOf(kLayer2) + "\"]}}";
}

std::string Manifest() {
  return "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+"
         "json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
         "\"size\":" +
         std::to_string(Config().size()) + ",\"digest\":\"" + DigestOf(Config()) +
         "\"},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\","
         "\"size\":" +
         std::to_string(kLayer1.size()) + ",\"digest\":\"" + DigestOf(kLayer1) +
         "\"},{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\",\"size\":" +
         std::to_string(kLayer2.size()) + ",\"digest\":\"" + DigestOf(kLayer2) + "\"}]}";
}

BlobInfo Known(const std::string& data, const char* type) {
  return BlobInfo{DigestOf(data), static_cast<int64_t>(data.size()), type};
}

// Writes the test image the way the pipeline does; `unknown` layers arrive as a re-encoding
// copy sends them (no digest, no size) and are committed under their verified digest.
void WriteImage(ImageDestination& d, bool unknown) {
  constexpr const char* kTar = "application/vnd.docker.image.rootfs.diff.tar";
  for (const std::string* layer : {&kLayer1, &kLayer2}) {
    BlobInfo announced = unknown ? BlobInfo{"", -1, kTar} : Known(*layer, kTar);
    auto w = d.NewBlobWriter(announced);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (size_t i = 0; i < layer->size(); i += 1000) {
      ASSERT_TRUE((*w)->Write(layer->data() + i, std::min<size_t>(1000, layer->size() - i)).ok());
    }
    ASSERT_TRUE((*w)->Commit(Known(*layer, kTar)).ok());
  }
  BlobInfo config = Known(Config(), "application/vnd.docker.container.image.v1+json");
  auto w = d.NewBlobWriter(config);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(Config().data(), Config().size()).ok());
  ASSERT_TRUE((*w)->Commit(config).ok());
  RawManifest m{Manifest(), std::string(media::kDockerV2S2), DigestOf(Manifest())};
  Status put = d.PutManifest(m, false);
  ASSERT_TRUE(put.ok()) << put.error().message;
  Status commit = d.Commit();
  ASSERT_TRUE(commit.ok()) << commit.error().message;
}

std::optional<DockerReference> Tag() {
  auto t = ParseDockerReference("example.com/app:v1");
  EXPECT_TRUE(t.ok());
  return *t;
}

TEST(DockerArchiveTest, LayersOfUnknownSizeGiveTheSameArchiveInAFileAndInAStream) {
  TempDir tmp;
  std::string known_path = tmp.Sub("known.tar"), file_path = tmp.Sub("deferred.tar");
  {
    auto d = NewDockerArchiveFileDestination(known_path, Tag());
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)->DesiredLayerCompression(), LayerCompression::kDecompress);
    EXPECT_TRUE((*d)->SerialBlobs());
    WriteImage(**d, false);
  }
  {
    // A file is rewritten in place: the entry's header goes over its placeholder.
    auto d = NewDockerArchiveFileDestination(file_path, Tag());
    ASSERT_TRUE(d.ok());
    WriteImage(**d, true);
  }
  std::string stream;
  bool committed = false;
  {
    // A stream cannot be: the layer is spooled first.
    auto d = NewDockerArchiveDestination(std::make_unique<StringSink>(&stream, &committed), Tag(),
                                         "test stream");
    ASSERT_TRUE(d.ok());
    WriteImage(**d, true);
  }
  EXPECT_TRUE(committed);
  auto known = ReadFileBounded(known_path, 1 << 20);
  auto deferred = ReadFileBounded(file_path, 1 << 20);
  ASSERT_TRUE(known.ok() && deferred.ok());
  EXPECT_EQ(*known, *deferred);
  EXPECT_EQ(*known, stream);
  auto names = ListDir(tmp.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"deferred.tar", "known.tar"}));
}

TEST(DockerArchiveTest, TheArchiveWrittenReadsBackWithTheManifestContainersImageSynthesizes) {
  TempDir tmp;
  std::string path = tmp.Sub("a.tar");
  {
    auto d = NewDockerArchiveFileDestination(path, Tag());
    ASSERT_TRUE(d.ok());
    WriteImage(**d, true);
  }
  for (const char* ref : {"", "example.com/app:v1"}) {
    auto src = NewDockerArchiveSource(path, ref, -1);
    ASSERT_TRUE(src.ok()) << src.error().message;
    auto m = (*src)->GetManifest("");
    ASSERT_TRUE(m.ok());
    std::string want = Manifest();
    // The synthesized manifest claims gzip for every layer, as containers/image's does.
    for (size_t at; (at = want.find("diff.tar\"")) != std::string::npos;) {
      want.replace(at, 9, "diff.tar.gzip\"");
    }
    EXPECT_EQ(m->bytes, want);
    std::string got;
    ASSERT_TRUE((*src)
                    ->GetBlob(Known(kLayer1, ""),
                              [&](const char* d, size_t n) {
                                got.append(d, n);
                                return Ok();
                              })
                    .ok());
    EXPECT_EQ(got, kLayer1);
  }
  auto missing = NewDockerArchiveSource(path, "example.com/app:v2", -1);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("not found"), std::string::npos);
}

TEST(DockerArchiveTest, AnUnfinishedCopyLeavesNothingAndCommitsNothing) {
  TempDir tmp;
  std::string stream;
  bool committed = false;
  {
    auto d = NewDockerArchiveFileDestination(tmp.Sub("a.tar"), Tag());
    ASSERT_TRUE(d.ok());
    auto w = (*d)->NewBlobWriter(BlobInfo{"", -1, "application/vnd.docker.image.rootfs.diff.tar"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("abc", 3).ok());
  }
  {
    auto d = NewDockerArchiveDestination(std::make_unique<StringSink>(&stream, &committed), Tag(),
                                         "test stream");
    ASSERT_TRUE(d.ok());
    auto w = (*d)->NewBlobWriter(Known(kLayer2, "application/vnd.docker.image.rootfs.diff.tar"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("abc", 3).ok());
    w->reset();
    EXPECT_FALSE((*d)->Commit().ok());
  }
  EXPECT_FALSE(committed);
  auto names = ListDir(tmp.path());
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST(TarWriterTest, ADeferredEntryGetsItsHeaderAtTheEnd) {
  std::string out;
  TarWriter w([&](const char* d, size_t n) {
    out.append(d, n);
    return Ok();
  });
  auto at = w.BeginDeferred();
  ASSERT_TRUE(at.ok());
  ASSERT_TRUE(w.WriteData("hello", 5).ok());
  EXPECT_FALSE(w.EndDeferred(TarHeader{"x.tar", "", '0', 0444, 4}).ok());
  auto header = w.EndDeferred(TarHeader{"x.tar", "", '0', 0444, 5});
  ASSERT_TRUE(header.ok());
  out.replace(static_cast<size_t>(*at), header->size(), *header);
  ASSERT_TRUE(w.Finish().ok());
  std::string direct;
  TarWriter v([&](const char* d, size_t n) {
    direct.append(d, n);
    return Ok();
  });
  ASSERT_TRUE(v.WriteFile("x.tar", "hello").ok());
  ASSERT_TRUE(v.Finish().ok());
  EXPECT_EQ(out, direct);
}

}  // namespace
}  // namespace regfs
