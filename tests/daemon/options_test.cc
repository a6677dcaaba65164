// Tests of the daemon's option parsing: defaults, every option, --help, and refusals that
// name the option in one line.
#include "daemon/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ecmplb::daemon {
namespace {

absl::StatusOr<ParsedOptions> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "ecmplb");
  return ParseOptions(static_cast<int>(args.size()), args.data());
}

TEST(OptionsTest, DefaultsWithOnlyTheConfig) {
  auto p = Parse({"--config", "/etc/ecmplb.json"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->help);
  EXPECT_EQ(p->options.config, "/etc/ecmplb.json");
  EXPECT_EQ(p->options.port, -1);
  EXPECT_FALSE(p->options.idle_backoff);
  EXPECT_EQ(p->options.mbufs, 16383u);
  EXPECT_EQ(p->options.rx_desc, 1024);
  EXPECT_EQ(p->options.run_seconds, 0);
  EXPECT_EQ(p->options.rx_steering, "rss");
  EXPECT_EQ(p->options.housekeeping_us, 100u);
}

TEST(OptionsTest, EveryOption) {
  auto p = Parse({"--config", "c.json", "--port", "2", "--idle-backoff", "--idle-sleep-us", "70",
                  "--idle-polls", "9", "--mbufs", "4095", "--rx-desc", "256", "--tx-desc", "512",
                  "--trust-ip-checksum", "--promiscuous", "--run-seconds", "1.5",
                  "--rx-steering", "peer", "--housekeeping-us", "250"});
  ASSERT_TRUE(p.ok()) << p.status();
  const Options& o = p->options;
  EXPECT_EQ(o.port, 2);
  EXPECT_TRUE(o.idle_backoff);
  EXPECT_EQ(o.idle_sleep_us, 70u);
  EXPECT_EQ(o.idle_polls, 9u);
  EXPECT_EQ(o.mbufs, 4095u);
  EXPECT_EQ(o.rx_desc, 256);
  EXPECT_EQ(o.tx_desc, 512);
  EXPECT_TRUE(o.trust_ip_checksum);
  EXPECT_TRUE(o.promiscuous);
  EXPECT_DOUBLE_EQ(o.run_seconds, 1.5);
  EXPECT_EQ(o.rx_steering, "peer");
  EXPECT_EQ(o.housekeeping_us, 250u);
}

TEST(OptionsTest, UnknownRxSteeringIsRefused) {
  auto p = Parse({"--config", "c.json", "--rx-steering", "random"});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(std::string(p.status().message()).find("--rx-steering"), std::string::npos)
      << p.status();
}

TEST(OptionsTest, HelpIsNotAnError) {
  auto p = Parse({"--help"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->help);
  EXPECT_NE(p->help_text.find("--config"), std::string::npos);
  EXPECT_NE(p->help_text.find("--idle-backoff"), std::string::npos);
}

TEST(OptionsTest, RefusalsNameTheOptionInOneLine) {
  struct Case {
    std::vector<const char*> args;
    const char* mentions;
  } cases[] = {
      {{}, "--config"},
      {{"--config", "c", "--mbufs", "10"}, "--mbufs"},
      {{"--config", "c", "--rx-desc", "70000"}, "--rx-desc"},
      {{"--config", "c", "--run-seconds", "-1"}, "--run-seconds"},
      {{"--config", "c", "--bogus"}, "--bogus"},
  };
  for (const auto& c : cases) {
    auto p = Parse(c.args);
    ASSERT_FALSE(p.ok()) << c.mentions;
    const std::string msg(p.status().message());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(msg.find(c.mentions), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("--help"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace ecmplb::daemon
