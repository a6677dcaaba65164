// Tests of ecmplb-gen's command line: defaults, required options, one-line errors, and the
// model/checker settings derived from it.
#include "bench/gen/options.h"

#include <gtest/gtest.h>

#include <vector>

namespace ecmplb::gen {
namespace {

absl::StatusOr<GenOptions> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "ecmplb-gen");
  return ParseGenOptions(static_cast<int>(args.size()), args.data());
}

TEST(GenOptionsTest, Defaults) {
  auto o = Parse({"--config", "c.json", "--dst-mac", "02:00:00:00:00:01"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->flows, 1000u);
  EXPECT_EQ(o->size, 64u);
  EXPECT_EQ(EffectiveDuration(*o), 10.0);
  EXPECT_EQ(EffectivePcapCount(*o), 1'000'000u);
  auto c = ToCheckerOptions(*o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sample, 16u);  // full speed: sampled
  EXPECT_EQ(c->mode, ExpectMode::kBalancer);
  auto m = ToModelOptions(*o, MacAddr{{2, 0, 0, 0, 0, 9}});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->src_mac.ToString(), "02:00:00:00:00:09");
  EXPECT_EQ(m->dst_mac.ToString(), "02:00:00:00:00:01");
  EXPECT_EQ(m->proto, ProtoFilter::kMix);
  EXPECT_FALSE(m->vlan.has_value());
}

TEST(GenOptionsTest, Everything) {
  auto o = Parse({"--config",     "c.json",
                  "--dst-mac",    "02:00:00:00:00:01",
                  "--flows",      "5000",
                  "--new-share",  "0.25",
                  "--proto",      "udp",
                  "--size",       "128",
                  "--vlan",       "7",
                  "--rate",       "500000",
                  "--count",      "1000",
                  "--client-net", "10.1.0.0/16",
                  "--client-net", "2001:db8:1::/64",
                  "--queues",     "2",
                  "--steer",      "softrss",
                  "--expect",     "loopback",
                  "--service",    "10.0.0.1:80/tcp",
                  "--src-mac",    "02:00:00:00:00:02"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(EffectiveDuration(*o), 0.0);
  EXPECT_EQ(EffectivePcapCount(*o), 1000u);
  auto c = ToCheckerOptions(*o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sample, 1u);  // <= 1 Mpps: everything
  EXPECT_EQ(c->mode, ExpectMode::kLoopback);
  auto m = ToModelOptions(*o, MacAddr{});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->flows, 5000u);
  EXPECT_EQ(m->proto, ProtoFilter::kUdp);
  EXPECT_EQ(m->vlan, 7);
  EXPECT_EQ(m->client_v4.prefix, 16);
  EXPECT_EQ(m->client_v6.prefix, 64);
  EXPECT_EQ(m->queues, 2);
  EXPECT_EQ(m->steering, Steering::kSoftRss);
  ASSERT_EQ(m->services.size(), 1u);
  EXPECT_EQ(m->src_mac.ToString(), "02:00:00:00:00:02");
}

TEST(GenOptionsTest, CheckOption) {
  auto o = Parse({"--config", "c", "--dst-mac", "02:00:00:00:00:01", "--check", "sample:100"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(ToCheckerOptions(*o)->sample, 100u);
  for (const char* bad : {"sample:0", "sample:", "sample:x", "some"}) {
    o->check = bad;
    EXPECT_FALSE(ToCheckerOptions(*o).ok()) << bad;
  }
}

TEST(GenOptionsTest, ErrorsSayWhatToChange) {
  auto no_mac = Parse({"--config", "c.json"});
  ASSERT_FALSE(no_mac.ok());
  EXPECT_NE(no_mac.status().message().find("--dst-mac is required"), std::string::npos);
  EXPECT_TRUE(Parse({"--config", "c.json", "--neighbors"}).ok());  // no MAC needed
  EXPECT_FALSE(Parse({"--dst-mac", "02:00:00:00:00:01"}).ok());    // no --config
  EXPECT_FALSE(Parse({"--config", "c", "--dst-mac", "x", "--flows", "0"}).ok());
  EXPECT_FALSE(Parse({"--config", "c", "--dst-mac", "x", "--size", "63"}).ok());
  EXPECT_FALSE(Parse({"--config", "c", "--dst-mac", "x", "--proto", "sctp"}).ok());
  auto o = Parse({"--config", "c", "--dst-mac", "x"});
  ASSERT_TRUE(o.ok());
  auto m = ToModelOptions(*o, MacAddr{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("--dst-mac"), std::string::npos);
  o->dst_mac = "02:00:00:00:00:01";
  o->client_nets = {"10.0.0.0/16", "10.1.0.0/16"};
  m = ToModelOptions(*o, MacAddr{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("one range per address family"), std::string::npos);
}

TEST(GenOptionsTest, Help) {
  auto o = Parse({"--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->help);
  EXPECT_NE(o->help_text.find("--new-share"), std::string::npos);
}

}  // namespace
}  // namespace ecmplb::gen
