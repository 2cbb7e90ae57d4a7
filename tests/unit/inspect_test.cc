#include "transports/image/inspect.h"

#include <gtest/gtest.h>

#include <string>

namespace regfs {
namespace {

// ---- NormalizeRfc3339 ------------------------------------------------------------------------

TEST(NormalizeRfc3339Test, UtcStaysAsItIs) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05Z"), "2023-01-02T03:04:05Z");
}

TEST(NormalizeRfc3339Test, TrailingZerosOfTheFractionAreTrimmed) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.120000000Z"), "2023-01-02T03:04:05.12Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.000000000Z"), "2023-01-02T03:04:05Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.0Z"), "2023-01-02T03:04:05Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.123456789Z"), "2023-01-02T03:04:05.123456789Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.100200300Z"), "2023-01-02T03:04:05.1002003Z");
}

TEST(NormalizeRfc3339Test, FractionBeyondNanosecondsIsTruncated) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.1234567891Z"), "2023-01-02T03:04:05.123456789Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.0000000009Z"), "2023-01-02T03:04:05Z");
}

TEST(NormalizeRfc3339Test, ZeroOffsetBecomesZ) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.120000000+00:00"), "2023-01-02T03:04:05.12Z");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05-00:00"), "2023-01-02T03:04:05Z");
}

TEST(NormalizeRfc3339Test, OtherOffsetsAreKept) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05.5+02:00"), "2023-01-02T03:04:05.5+02:00");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05-07:30"), "2023-01-02T03:04:05-07:30");
}

TEST(NormalizeRfc3339Test, LowercaseSeparatorsAreAccepted) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02t03:04:05z"), "2023-01-02T03:04:05Z");
}

TEST(NormalizeRfc3339Test, UnparsableIsEmpty) {
  for (const char* bad :
       {"", "2023", "2023-01-02", "2023-01-02T03:04:05", "2023-01-02 03:04:05Z",
        "2023/01/02T03:04:05Z", "2023-01-02T03:04Z", "2023-01-02T03:04:05+0200",
        "2023-01-02T03:04:05+02", "2023-01-02T03:04:05 Z", "2023-01-02T03:04:05ZZ",
        "2023-01-02T03:04:05.12", "2023-01-02T03:04:05.abcZ", "x023-01-02T03:04:05Z",
        "2023-01-02T03:04:05UTC", "yesterday at noon, roughly"}) {
    EXPECT_EQ(NormalizeRfc3339(bad), "") << bad;
  }
}

TEST(NormalizeRfc3339Test, OffsetMustBeDigits) {
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05+ab:cd"), "");
  EXPECT_EQ(NormalizeRfc3339("2023-01-02T03:04:05-0x:00"), "");
}

// ---- GoJsonEscapes ---------------------------------------------------------------------------

TEST(GoJsonEscapesTest, EscapesHtmlCharacters) {
  EXPECT_EQ(GoJsonEscapes(R"({"a":"<b> & c"})"), R"({"a":"\u003cb\u003e \u0026 c"})");
  EXPECT_EQ(GoJsonEscapes("<<>>&&"), R"(\u003c\u003c\u003e\u003e\u0026\u0026)");
}

TEST(GoJsonEscapesTest, LeavesEverythingElse) {
  const std::string plain = "{\n    \"k\": \"v \\\" \\\\ é\\n\"\n}";
  EXPECT_EQ(GoJsonEscapes(plain), plain);
  EXPECT_EQ(GoJsonEscapes(""), "");
}

// ---- OciConfigJson ---------------------------------------------------------------------------

// Outputs below are what skopeo 1.9.3 `inspect --config` prints for the same config blobs.
TEST(OciConfigJsonTest, FullConfigMatchesSkopeo) {
  const std::string config =
      R"({"architecture":"arm","variant":"v7","os":"linux","os.version":"10.0","os.features":["win32k"],"author":"me <a@b>","created":"2023-01-02T03:04:05.120000000+00:00","config":{"User":"1000","ExposedPorts":{"80/tcp":{},"443/tcp":{}},"Env":["PATH=/bin","A=<&>"],"Entrypoint":["/bin/sh"],"Cmd":["-c","echo"],"Volumes":{"/data":{}},"WorkingDir":"/w","Labels":{"z":"1","a":"2"},"StopSignal":"SIGTERM","ArgsEscaped":true,"Hostname":"x"},"rootfs":{"type":"layers","diff_ids":["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]},"history":[{"created":"2023-01-02T03:04:05Z","created_by":"/bin/sh -c #(nop) ADD","author":"x","comment":"c","empty_layer":true},{"created_by":"y"}],"docker_version":"20.10"})";
  const std::string expected = R"({
    "created": "2023-01-02T03:04:05.12Z",
    "author": "me \u003ca@b\u003e",
    "architecture": "arm",
    "variant": "v7",
    "os": "linux",
    "os.version": "10.0",
    "os.features": [
        "win32k"
    ],
    "config": {
        "User": "1000",
        "ExposedPorts": {
            "443/tcp": {},
            "80/tcp": {}
        },
        "Env": [
            "PATH=/bin",
            "A=\u003c\u0026\u003e"
        ],
        "Entrypoint": [
            "/bin/sh"
        ],
        "Cmd": [
            "-c",
            "echo"
        ],
        "Volumes": {
            "/data": {}
        },
        "WorkingDir": "/w",
        "Labels": {
            "a": "2",
            "z": "1"
        },
        "StopSignal": "SIGTERM",
        "ArgsEscaped": true
    },
    "rootfs": {
        "type": "layers",
        "diff_ids": [
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        ]
    },
    "history": [
        {
            "created": "2023-01-02T03:04:05Z",
            "created_by": "/bin/sh -c #(nop) ADD",
            "author": "x",
            "comment": "c",
            "empty_layer": true
        },
        {
            "created_by": "y"
        }
    ]
}
)";
  auto out = OciConfigJson(config);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, expected);
}

TEST(OciConfigJsonTest, MinimalConfigMatchesSkopeo) {
  auto out = OciConfigJson(
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, R"({
    "architecture": "amd64",
    "os": "linux",
    "config": {},
    "rootfs": {
        "type": "layers",
        "diff_ids": []
    }
}
)");
}

TEST(OciConfigJsonTest, MissingRootfsAndEmptyListsMatchSkopeo) {
  auto out = OciConfigJson(
      R"({"architecture":"amd64","os":"linux","created":"2023-01-02T03:04:05.5+02:00",)"
      R"("config":{"Env":[]},"history":[]})");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, R"({
    "created": "2023-01-02T03:04:05.5+02:00",
    "architecture": "amd64",
    "os": "linux",
    "config": {},
    "rootfs": {
        "type": "",
        "diff_ids": null
    }
}
)");
}

TEST(OciConfigJsonTest, NotAJsonObjectIsEinval) {
  for (const char* bad : {"", "not json", "[]", "\"config\"", "{"}) {
    auto out = OciConfigJson(bad);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.error().errnum, EINVAL) << bad;
  }
}

TEST(OciConfigJsonTest, WrongFieldTypesAreNotExceptions) {
  const std::string config = R"({"architecture":5,"os":null,"created":17,"config":[],"rootfs":"x",)"
                             R"("history":[1,"two",{"created":false,"empty_layer":"yes"}]})";
  EXPECT_NO_THROW({ auto out = OciConfigJson(config); });
}

}  // namespace
}  // namespace regfs
