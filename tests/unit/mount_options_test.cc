#include "fs/mount_options.h"

#include <gtest/gtest.h>

#include "tests/unit/testing/scoped_env.h"

namespace regfs {
namespace {

TEST(MountOptionsTest, ParsesEveryOption) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("cache_dir=/c,cache_size=2G,tag_ttl=5,list_ttl=7,ro,allow_other,"
                                "authfile=/a.json,insecure=reg.example:5000,insecure=127.0.0.1:1,"
                                "verify=full,platform=linux/arm64/v8,log=/l,debug,timeout=3,"
                                "policy=/p.json,uid=1000,gid=100,umask=027",
                                &o)
                  .ok());
  EXPECT_EQ(o.cache_dir, "/c");
  EXPECT_EQ(o.cache_size, 2LL << 30);
  EXPECT_EQ(o.tag_ttl, 5);
  EXPECT_EQ(o.list_ttl, 7);
  EXPECT_TRUE(o.read_only);
  EXPECT_TRUE(o.allow_other);
  EXPECT_EQ(o.authfile, "/a.json");
  EXPECT_EQ(o.insecure, (std::set<std::string>{"reg.example:5000", "127.0.0.1:1"}));
  EXPECT_EQ(o.verify, VerifyMode::kFull);
  EXPECT_EQ(o.platform.os, "linux");
  EXPECT_EQ(o.platform.architecture, "arm64");
  EXPECT_EQ(o.platform.variant, "v8");
  EXPECT_EQ(o.log_file, "/l");
  EXPECT_TRUE(o.debug);
  EXPECT_EQ(o.timeout, 3);
  EXPECT_EQ(o.policy_file, "/p.json");
  EXPECT_EQ(o.uid, 1000);
  EXPECT_EQ(o.gid, 100);
  EXPECT_EQ(o.umask, 027);
  EXPECT_EQ(EffectiveUmask(o), 027);
}

TEST(MountOptionsTest, FstabAndGenericMountOptionsAreIgnored) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("defaults,_netdev,noauto,nofail,x-systemd.automount,"
                                "x-systemd.idle-timeout=60,comment=x,nosuid,nodev,noatime,"
                                "cache_size=1G,rw",
                                &o)
                  .ok());
  EXPECT_EQ(o.cache_size, 1LL << 30);
  EXPECT_FALSE(o.read_only);
  // Anything else is still an error.
  EXPECT_FALSE(ParseMountOptions("defaults,cache_sise=1G", &o).ok());
}

TEST(MountOptionsTest, FilesAreNotWorldReadableWithAllowOtherUnlessAsked) {
  MountOptions own;
  EXPECT_EQ(own.uid, -1);
  EXPECT_EQ(EffectiveUmask(own), 022);  // only its owner can enter anyway
  MountOptions shared;
  ASSERT_TRUE(ParseMountOptions("allow_other", &shared).ok());
  EXPECT_EQ(EffectiveUmask(shared), 077);
  ASSERT_TRUE(ParseMountOptions("allow_other,umask=0", &shared).ok());
  EXPECT_EQ(EffectiveUmask(shared), 0);
}

TEST(MountOptionsTest, RefusesBadOptionsNamingThem) {
  for (const char* bad :
       {"cache_size=lots",     "cache_size=0",   "tag_ttl=-1", "tag_ttl=",   "verify=some",
        "insecure=not a host", "platform=linux", "nosuch",     "ro=1",       "timeout=0",
        "cache_dir=",          "policy=",        "uid=",       "uid=root",   "uid=-1",
        "uid=4294967295",      "gid=x",          "umask=8",    "umask=1777", "umask="}) {
    MountOptions o;
    Status s = ParseMountOptions(bad, &o);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().errnum, EINVAL);
    EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
  }
}

TEST(MountOptionsTest, EmptyItemsAreSkipped) {
  MountOptions o;
  EXPECT_TRUE(ParseMountOptions(",,ro,,", &o).ok());
  EXPECT_TRUE(o.read_only);
}

TEST(MountOptionsTest, ParseSize) {
  EXPECT_EQ(ParseSize("4096"), 4096);
  EXPECT_EQ(ParseSize("8K"), 8 << 10);
  EXPECT_EQ(ParseSize("8k"), 8 << 10);
  EXPECT_EQ(ParseSize("3M"), 3 << 20);
  EXPECT_EQ(ParseSize("1T"), 1LL << 40);
  EXPECT_EQ(ParseSize(""), -1);
  EXPECT_EQ(ParseSize("M"), -1);
  EXPECT_EQ(ParseSize("1.5G"), -1);
  EXPECT_EQ(ParseSize("99999999999999G"), -1);
}

TEST(MountOptionsTest, DefaultCacheDirFollowsXdg) {
  testing::ScopedEnv env("XDG_CACHE_HOME", "/x/cache");
  EXPECT_EQ(DefaultCacheDir(), "/x/cache/regfs");
  env.Unset("XDG_CACHE_HOME");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(DefaultCacheDir(), "/home/u/.cache/regfs");
}

}  // namespace
}  // namespace regfs
