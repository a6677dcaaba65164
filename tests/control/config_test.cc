// Tests of the configuration model: JSON round trip, defaults, every validation rule with its
// canonical status code, atomic save.
#include "control/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace ecmplb::control {
namespace {

constexpr char kGood[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1", "mtu": 1500,
           "exception_interface": "lb0", "control_socket": "/run/ecmplb/x.sock"},
  "conntrack": {"capacity": 100000, "tcp_established_s": 600},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
     "sorry_backend": {"address": "10.0.0.99"},
     "backends": [{"address": "10.0.0.21", "weight": 2}, {"id": 7, "address": "10.0.0.22"}]},
    {"vip": "2001:DB8::10", "port": 443, "protocol": "tcp", "hash": "source-ip",
     "backends": [{"address": "2001:db8::21"}]},
    {"vip": "10.100.0.2", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "health_check": {"type": "http", "path": "/healthz", "expect_status": 204, "rise": 1, "fall": 2,
                      "interval_ms": 200, "timeout_ms": 100},
     "backends": [{"address": "192.168.50.5", "weight": 0}]}
  ]})";

TEST(ConfigTest, ParsesAndFillsDefaults) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host.address, "10.0.0.11");
  EXPECT_EQ(c->conntrack.capacity, 100000u);
  EXPECT_EQ(c->conntrack.tcp_established_s, 600u);
  EXPECT_EQ(c->conntrack.udp_s, 300u);  // default
  ASSERT_EQ(c->services.size(), 3u);
  EXPECT_EQ(c->services[0].table_size, 65537u);
  EXPECT_EQ(c->services[0].backends[0].id, 1u);  // lowest free id
  EXPECT_EQ(c->services[0].backends[1].id, 7u);
  EXPECT_EQ(c->services[1].vip, "2001:db8::10");  // canonical text
  EXPECT_EQ(c->services[1].hash, HashMode::kSourceIp);
  EXPECT_EQ(c->services[2].forward, ForwardMode::kGre);
  EXPECT_EQ(c->services[2].backends[0].weight, 0u);
  ASSERT_TRUE(c->services[2].health_check.has_value());
  EXPECT_EQ(c->services[2].health_check->type, HealthCheckConfig::Type::kHttp);
  EXPECT_EQ(c->services[2].health_check->expect_status, 204);
  EXPECT_EQ(c->services[2].health_check->path, "/healthz");
  EXPECT_FALSE(c->services[0].health_check.has_value());
  ASSERT_TRUE(c->services[0].sorry_backend.has_value());
  EXPECT_EQ(c->services[0].sorry_backend->address, "10.0.0.99");
  EXPECT_EQ(c->services[0].sorry_backend->id, kSorryBackendId);
  EXPECT_TRUE(c->host.announce);
  EXPECT_EQ(c->host.announce_interface, "lo");
  EXPECT_EQ(c->host.drain_s, 5u);
  EXPECT_EQ(c->services[1].Name(), "[2001:db8::10]:443/tcp");
  EXPECT_NE(c->FindService("10.100.0.1", 80, Protocol::kTcp), nullptr);
  EXPECT_EQ(c->FindService("10.100.0.1", 80, Protocol::kUdp), nullptr);
}

TEST(ConfigTest, SerializeRoundTrips) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok());
  std::string text = SerializeConfig(*c);
  auto again = ParseConfig(text);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << text;
  EXPECT_EQ(*again, *c);
  EXPECT_EQ(SerializeConfig(*again), text);
}

// The tunnel modes and GUE's port parse, default and round-trip.
TEST(ConfigTest, EveryCheckTypeParsesAndRoundTrips) {
  auto c = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [
    {"vip": "10.1.1.1", "port": 80, "health_check": {"type": "http", "path": "/health",
     "expect_body": "\"status\": \"ok\""}},
    {"vip": "10.1.1.2", "port": 5000, "protocol": "udp",
     "health_check": {"type": "udp", "send": "PING", "expect": "PONG"}},
    {"vip": "10.1.1.3", "port": 53, "protocol": "udp",
     "health_check": {"type": "dns", "query": "www.example.com.", "query_type": "AAAA"}},
    {"vip": "10.1.1.4", "port": 25,
     "health_check": {"type": "script", "command": ["/usr/lib/ecmplb/check-smtp", "--quick"],
                      "timeout_ms": 900}},
    {"vip": "10.1.1.5", "port": 443,
     "health_check": {"type": "https", "path": "/ready", "expect_status": 204}}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& s = c->services;
  EXPECT_EQ(s[0].health_check->expect_body, "\"status\": \"ok\"");
  EXPECT_EQ(s[1].health_check->type, HealthCheckConfig::Type::kUdp);
  EXPECT_EQ(s[1].health_check->send, "PING");
  EXPECT_EQ(s[1].health_check->expect, "PONG");
  EXPECT_EQ(s[2].health_check->type, HealthCheckConfig::Type::kDns);
  EXPECT_EQ(s[2].health_check->query_type, "AAAA");
  EXPECT_EQ(DnsQueryType(s[2].health_check->query_type), 28);
  EXPECT_EQ(s[3].health_check->command,
            (std::vector<std::string>{"/usr/lib/ecmplb/check-smtp", "--quick"}));
  EXPECT_EQ(s[4].health_check->type, HealthCheckConfig::Type::kHttps);
  EXPECT_EQ(s[4].health_check->expect_status, 204);
  auto again = ParseConfig(SerializeConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
  EXPECT_EQ(SerializeConfig(*again), SerializeConfig(*c));
}

TEST(ConfigTest, TunnelModesAndGuePort) {
  auto c = ParseConfig(R"({"host": {"address": "10.0.0.11", "gue_port": 5555}, "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "ipip",
     "backends": [{"address": "10.0.0.21"}]},
    {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gue",
     "backends": [{"address": "10.0.0.21"}]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->services[0].forward, ForwardMode::kIpip);
  EXPECT_EQ(c->services[1].forward, ForwardMode::kGue);
  EXPECT_EQ(c->host.gue_port, 5555);
  auto again = ParseConfig(SerializeConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
  EXPECT_EQ(ParseConfig(R"({"host": {"address": "10.0.0.11"}})")->host.gue_port, 6080);
}

// host.control: group names that exist here (root, daemon) round-trip; absent, nothing.
TEST(ConfigTest, SyncSectionParsesAndRoundTrips) {
  auto c = ParseConfig(R"({"host": {"address": "10.0.0.11"},
    "sync": {"peers": ["10.0.0.12", "10.0.0.13"], "key_file": "/etc/ecmplb/sync.key",
             "port": 7401, "refresh_s": 30}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sync.peers, (std::vector<std::string>{"10.0.0.12", "10.0.0.13"}));
  EXPECT_EQ(c->sync.port, 7401);
  EXPECT_EQ(c->sync.refresh_s, 30u);
  EXPECT_EQ(c->sync.rate_per_worker, 100000u);
  auto again = ParseConfig(SerializeConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
  // No sync section: none written.
  auto plain = ParseConfig(R"({"host": {"address": "10.0.0.11"}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(SerializeConfig(*plain).find("sync"), std::string::npos);
}

// host.address6: optional, an IPv6 unicast address, round-trips with its prefix length.
TEST(ConfigTest, HostIpv6Address) {
  auto c = ParseConfig(R"({"host": {"address": "10.0.0.11", "address6": "2001:DB8:A::11",
                                    "prefix_length6": 48}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host.address6, "2001:db8:a::11");
  EXPECT_EQ(c->host.prefix_length6, 48);
  auto again = ParseConfig(SerializeConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
  auto plain = ParseConfig(R"({"host": {"address": "10.0.0.11"}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->host.address6.empty());
  EXPECT_EQ(SerializeConfig(*plain).find("address6"), std::string::npos);
}

// The fragments section: defaults, parse, round trip; not written while it is the default.
TEST(ConfigTest, FragmentsSectionParsesAndRoundTrips) {
  auto plain = ParseConfig(R"({"host": {"address": "10.0.0.11"}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->fragments.capacity, 1024u);
  EXPECT_EQ(plain->fragments.hold, 64u);
  EXPECT_EQ(plain->fragments.timeout_s, 2u);
  EXPECT_EQ(SerializeConfig(*plain).find("fragments"), std::string::npos);
  auto c = ParseConfig(R"({"host": {"address": "10.0.0.11"},
    "fragments": {"capacity": 0, "hold": 8, "timeout_s": 5}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->fragments.capacity, 0u);
  EXPECT_EQ(c->fragments.hold, 8u);
  EXPECT_EQ(c->fragments.timeout_s, 5u);
  auto again = ParseConfig(SerializeConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
}

TEST(ConfigTest, ControlSocketGroups) {
  auto c = ParseConfig(
      R"({"host": {"address": "10.0.0.11", "control": {"group": "root", "read_only_group": "daemon"}}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host.control.group, "root");
  EXPECT_EQ(c->host.control.read_only_group, "daemon");
  const std::string text = SerializeConfig(*c);
  EXPECT_NE(text.find(R"("read_only_group": "daemon")"), std::string::npos) << text;
  auto again = ParseConfig(text);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *c);
  auto plain = ParseConfig(R"({"host": {"address": "10.0.0.11"}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host.control, ControlAccessConfig{});
  EXPECT_EQ(SerializeConfig(*plain).find("\"control\""), std::string::npos);
}

struct Bad {
  const char* json;
  absl::StatusCode code;
  const char* mentions;
};

class ConfigRejectTest : public ::testing::TestWithParam<Bad> {};

TEST_P(ConfigRejectTest, RefusedWithClearReason) {
  auto c = ParseConfig(GetParam().json);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), GetParam().code) << c.status();
  EXPECT_NE(std::string(c.status().message()).find(GetParam().mentions), std::string::npos)
      << c.status();
}

#define HOST R"("host": {"address": "10.0.0.11"})"
INSTANTIATE_TEST_SUITE_P(
    All, ConfigRejectTest,
    ::testing::Values(
        Bad{"{", absl::StatusCode::kInvalidArgument, "not valid JSON"},
        // nlohmann::json throws out_of_range, not parse_error, for a number it cannot hold
        // (found by tests/fuzz/fuzz_config).
        Bad{"99999999999999e999", absl::StatusCode::kInvalidArgument, "not valid JSON"},
        Bad{R"({"host": {"address": "10.0.0.1", "mtu": 1e999}})",
            absl::StatusCode::kInvalidArgument, "not valid JSON"},
        Bad{"{}", absl::StatusCode::kInvalidArgument, "host: is required"},
        Bad{R"({"host": {"address": "10.0.0.300"}})", absl::StatusCode::kInvalidArgument,
            "host.address"},
        Bad{R"({"host": {"address": "10.0.0.1", "mtu": 100}})", absl::StatusCode::kInvalidArgument,
            "host.mtu"},
        Bad{R"({"host": {"address": "10.0.0.1", "gue_port": 0}})",
            absl::StatusCode::kInvalidArgument, "host.gue_port"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
              "forward": "vxlan", "backends": []}]})",
            absl::StatusCode::kInvalidArgument, "(dr, gre, ipip or gue)"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
              "forward": "ipip", "backends": [{"address": "2001:db8::5"}]}]})",
            absl::StatusCode::kInvalidArgument, "an IPv6 IPIP backend needs host.address6"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
              "forward": "gue", "backends": [{"address": "2001:db8::5"}]}]})",
            absl::StatusCode::kInvalidArgument, "an IPv6 GUE backend needs host.address6"},
        Bad{R"({"host": {"address": "10.0.0.1", "colour": 1}})", absl::StatusCode::kInvalidArgument,
            "host.colour: unknown field"},
        Bad{"{" HOST R"(, "sync": {"peers": ["10.0.0.12"]}})", absl::StatusCode::kInvalidArgument,
            "sync.key_file: is required"},
        Bad{"{" HOST R"(, "sync": {"peers": ["10.0.0.11"], "key_file": "k"}})",
            absl::StatusCode::kInvalidArgument, "own address"},
        Bad{"{" HOST R"(, "sync": {"peers": ["10.0.0.12", "10.0.0.12"], "key_file": "k"}})",
            absl::StatusCode::kInvalidArgument, "sync.peers[1]: is listed twice"},
        Bad{"{" HOST R"(, "sync": {"peers": ["2001:db8::1"], "key_file": "k"}})",
            absl::StatusCode::kInvalidArgument, "sync.peers[0]"},
        Bad{"{" HOST R"(, "sync": {"peers": ["10.0.0.12"], "key_file": "k", "refresh_s": 900}})",
            absl::StatusCode::kInvalidArgument, "sync.refresh_s"},
        Bad{"{" HOST R"(, "sync": {"peer": ["10.0.0.12"]}})", absl::StatusCode::kInvalidArgument,
            "sync.peer: unknown field"},
        Bad{R"({"host": {"address": "10.0.0.11", "address6": "10.0.0.12"}})",
            absl::StatusCode::kInvalidArgument, "host.address6: must be an IPv6 address"},
        Bad{R"({"host": {"address": "10.0.0.11", "address6": "fe80::1"}})",
            absl::StatusCode::kInvalidArgument, "host.address6: must be a global"},
        Bad{R"({"host": {"address": "10.0.0.11", "address6": "2001:db8::1",
                         "prefix_length6": 129}})",
            absl::StatusCode::kInvalidArgument, "host.prefix_length6"},
        Bad{"{" HOST R"(, "fragments": {"capacity": 2000000}})",
            absl::StatusCode::kInvalidArgument, "fragments.capacity"},
        Bad{"{" HOST R"(, "fragments": {"hold": 0}})", absl::StatusCode::kInvalidArgument,
            "fragments.hold"},
        Bad{"{" HOST R"(, "fragments": {"timeout_s": 31}})", absl::StatusCode::kInvalidArgument,
            "fragments.timeout_s"},
        Bad{"{" HOST R"(, "fragments": {"size": 1}})", absl::StatusCode::kInvalidArgument,
            "fragments.size: unknown field"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.1.1.1", "port": 80, "protocol": "sctp"}]})",
            absl::StatusCode::kInvalidArgument, "services[0].protocol"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.1.1.1", "port": 0}]})",
            absl::StatusCode::kInvalidArgument, "services[0].port"},
        Bad{"{" HOST R"(, "services": [{"vip": "10.1.1.1", "port": 80, "table_size": 65536}]})",
            absl::StatusCode::kInvalidArgument, "table_size"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80}, {"vip": "10.1.1.1", "port": 80}]})",
            absl::StatusCode::kAlreadyExists, "duplicate service"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "backends": [{"id": 2, "address": "10.0.0.5"}, {"id": 2, "address": "10.0.0.6"}]}]})",
            absl::StatusCode::kAlreadyExists, "duplicate backend id"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "backends": [{"address": "10.0.0.5"}, {"address": "10.0.0.5"}]}]})",
            absl::StatusCode::kAlreadyExists, "duplicate backend address"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "backends": [{"address": "10.0.0.5", "weight": -1}]}]})",
            absl::StatusCode::kInvalidArgument, "weight"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "backends": [{"address": "2001:db8::1"}]}]})",
            absl::StatusCode::kInvalidArgument, "address family"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "backends": [{"address": "10.0.0.5", "port": 8080}]}]})",
            absl::StatusCode::kInvalidArgument, "port must equal"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "icmp"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.type"},
        // HTTP-only keys on a TCP check were kept in the model but not saved, so a saved
        // config read back differed (found by tests/fuzz/fuzz_config).
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"expect_status": 400}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.expect_status: applies to"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "tcp", "path": "/"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.path: applies to"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"interval_ms": 100, "timeout_ms": 500}}]})",
            absl::StatusCode::kInvalidArgument, "timeout_ms: must not exceed"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "http", "path": "x y"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.path"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "udp", "query": "a.example"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.query: applies to \"type\": \"dns\" only"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "tcp", "expect_body": "ok"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.expect_body: applies to \"type\": \"http\" or \"https\" only"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 443, "health_check": {"type": "https", "send": "x"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.send: applies to \"type\": \"udp\" only"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 53, "health_check": {"type": "dns"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.query: is required"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 53, "health_check": {"type": "dns", "query": "a..b"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.query: must be a DNS name"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 53, "health_check": {"type": "dns", "query": "a.b", "query_type": "AXFR"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.query_type"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "script"}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.command: is required"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "script", "command": ["check.sh"]}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.command[0]: must be an absolute path"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "script", "command": []}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.command: must be an array of 1 to 32"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "health_check": {"type": "script", "command": ["/bin/true", 3]}}]})",
            absl::StatusCode::kInvalidArgument, "health_check.command[1]: must be a string"},
        Bad{R"({"host": {"address": "10.0.0.1", "announce": "yes"}})",
            absl::StatusCode::kInvalidArgument, "host.announce"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "sorry_backend": {"address": "10.0.0.5"}, "backends": [{"address": "10.0.0.5"}]}]})",
            absl::StatusCode::kInvalidArgument, "sorry_backend (10.0.0.5): must not be one of"},
        Bad{"{" HOST
            R"(, "services": [{"vip": "10.1.1.1", "port": 80, "sorry_backend": {"address": "10.0.0.5", "id": 3}}]})",
            absl::StatusCode::kInvalidArgument, "sorry_backend.id: unknown field"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"group": "ecmplb-no-such-group"}}})",
            absl::StatusCode::kInvalidArgument,
            "host.control.group: no group named 'ecmplb-no-such-group' on this host"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"read_only_group": "ecmplb-nope"}}})",
            absl::StatusCode::kInvalidArgument,
            "host.control.read_only_group: no group named 'ecmplb-nope' on this host"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"group": ""}}})",
            absl::StatusCode::kInvalidArgument, "host.control.group: must be a group name"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"group": 0}}})",
            absl::StatusCode::kInvalidArgument, "host.control.group: must be a string"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"group": "root", "read_only_group": "root"}}})",
            absl::StatusCode::kInvalidArgument,
            "host.control.read_only_group: names group 'root', which host.control.group already"},
        Bad{R"({"host": {"address": "10.0.0.1", "control": {"users": ["alice"]}}})",
            absl::StatusCode::kInvalidArgument, "host.control.users: unknown field"}));

TEST(ConfigTest, SaveIsAtomicAndLoadable) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok());
  auto dir = test_support::TempDir::Create("ecmplb-config-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::string path = dir->File("running.json");
  ASSERT_TRUE(SaveConfigFile(*c, path).ok());
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no temporary left behind
  auto loaded = LoadConfigFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, *c);
  EXPECT_EQ(LoadConfigFile(dir->File("missing.json")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ecmplb::control
