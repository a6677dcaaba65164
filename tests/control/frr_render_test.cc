// Tests of `ecmplbctl frr-config`'s rendering: template filling and the fields derived from
// the running configuration, against the real frr-conf/lb-host.frr.conf.in.
#include "control/frr_render.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ecmplb::control {
namespace {

TEST(FrrRenderTest, FillTemplate) {
  auto r = FillTemplate("a ${x} b $$ ${y}", {{"x", "1"}, {"y", "2"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "a 1 b $ 2");
  EXPECT_EQ(FillTemplate("${nope}", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FillTemplate("cost $5", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FillTemplate("${unterminated", {}).status().code(), absl::StatusCode::kInvalidArgument);
}

std::string ReadTemplate(const char* name) {
  std::ifstream in(std::string(ECMPLB_SOURCE_DIR "/frr-conf/") + name);
  EXPECT_TRUE(in) << name << " not found";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FrrRenderTest, RendersTheLbHostTemplate) {
  const std::string tmpl = ReadTemplate("lb-host.frr.conf.in");
  const std::string tmpl6 = ReadTemplate("lb-host.ospf6.frr.conf.in");
  auto cfg = ParseConfig(
      R"({"host": {"address": "10.0.0.12", "prefix_length": 24, "exception_interface": "lbtap"},
    "services": [{"vip": "10.100.0.1", "port": 80}, {"vip": "10.100.0.6", "port": 443},
                 {"vip": "2001:db8::1", "port": 80}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto text = RenderLbHostFrr(*cfg, "lb2", tmpl, tmpl6);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("hostname lb2\n"), std::string::npos);
  EXPECT_NE(text->find("interface lbtap\n"), std::string::npos);
  EXPECT_NE(text->find("ospf router-id 10.0.0.12\n"), std::string::npos);
  EXPECT_NE(text->find("network 10.0.0.0/24 area 0\n"), std::string::npos);
  EXPECT_NE(text->find("network 10.100.0.0/29 area 0\n"), std::string::npos)
      << *text;  // covers .1 and .6
  for (const char* field : {"${hostname}", "${router_id}", "${exception_interface}",
                            "${host_subnet}", "${vip_range}"}) {
    EXPECT_EQ(text->find(field), std::string::npos) << field;
  }
  auto single = ParseConfig(
      R"({"host": {"address": "10.0.0.12"}, "services": [{"vip": "10.100.0.1", "port": 80}]})");
  auto one = RenderLbHostFrr(*single, "lb", tmpl, tmpl6);
  ASSERT_TRUE(one.ok());
  EXPECT_NE(one->find("network 10.100.0.1/32 area 0\n"), std::string::npos);
  // No IPv6 VIP: no OSPFv3 part at all.
  EXPECT_EQ(one->find("ospf6"), std::string::npos) << *one;
  auto none = ParseConfig(R"({"host": {"address": "10.0.0.12"}})");
  EXPECT_EQ(RenderLbHostFrr(*none, "lb", tmpl, tmpl6).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto only6 = ParseConfig(
      R"({"host": {"address": "10.0.0.12"}, "services": [{"vip": "2001:db8::1", "port": 80}]})");
  ASSERT_TRUE(only6.ok()) << only6.status();
  EXPECT_EQ(RenderLbHostFrr(*only6, "lb", tmpl, tmpl6).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FrrRenderTest, Ospf6PartCoversTheIpv6Vips) {
  const std::string tmpl = ReadTemplate("lb-host.frr.conf.in");
  const std::string tmpl6 = ReadTemplate("lb-host.ospf6.frr.conf.in");
  auto cfg = ParseConfig(
      R"({"host": {"address": "10.0.0.12", "address6": "fd00::12", "prefix_length6": 64,
                   "exception_interface": "lbtap"},
    "services": [{"vip": "10.100.0.1", "port": 80}, {"vip": "fd64::1", "port": 80},
                 {"vip": "fd64::2", "port": 80}, {"vip": "fd64::2", "port": 443}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto text = RenderLbHostFrr(*cfg, "lb2", tmpl, tmpl6);
  ASSERT_TRUE(text.ok()) << text.status();
  // The OSPFv2 part first (it defines the BFD profile), then OSPFv3.
  const size_t v2 = text->find("router ospf\n"), v3 = text->find("router ospf6\n");
  ASSERT_NE(v2, std::string::npos);
  ASSERT_NE(v3, std::string::npos);
  EXPECT_LT(text->find(" profile fast\n"), v3);
  EXPECT_LT(v2, v3);
  // fd64::1 and fd64::2 differ in bit 126 (::01 vs ::10): the covering prefix is /126.
  EXPECT_NE(text->find("ipv6 prefix-list ecmplb-vips6 seq 5 permit fd64::/126 ge 128\n"),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("interface lbtap\n ! Same timers"), std::string::npos) << *text;
  EXPECT_NE(text->find(" ipv6 ospf6 bfd profile fast\n"), std::string::npos);
  EXPECT_NE(text->find(" ospf6 router-id 10.0.0.12\n"), std::string::npos);
  // The VIPs leave as one external LSA each (see the template on FRR 8.4's intra-prefix ECMP).
  EXPECT_NE(text->find(" redistribute connected route-map ecmplb-vips6\n"), std::string::npos);
  for (const char* field : {"${vip6_range}", "${router_id}", "${exception_interface}"}) {
    EXPECT_EQ(text->find(field), std::string::npos) << field;
  }

  auto one6 = ParseConfig(
      R"({"host": {"address": "10.0.0.12"}, "services": [{"vip": "10.100.0.1", "port": 80},
                                                         {"vip": "2001:db8:5::80", "port": 80}]})");
  ASSERT_TRUE(one6.ok()) << one6.status();
  auto single = RenderLbHostFrr(*one6, "lb", tmpl, tmpl6);
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_NE(single->find("permit 2001:db8:5::80/128 ge 128\n"), std::string::npos) << *single;
  auto far = ParseConfig(
      R"({"host": {"address": "10.0.0.12"}, "services": [{"vip": "10.100.0.1", "port": 80},
          {"vip": "2001:db8::1", "port": 80}, {"vip": "3001:db8::1", "port": 80}]})");
  ASSERT_TRUE(far.ok()) << far.status();
  auto wide = RenderLbHostFrr(*far, "lb", tmpl, tmpl6);
  ASSERT_TRUE(wide.ok()) << wide.status();
  // 0x2001 vs 0x3001: they differ in bit 3.
  EXPECT_NE(wide->find("permit 2000::/3 ge 128\n"), std::string::npos) << *wide;
}

// FRR's own parser on a rendered configuration: `vtysh --dryrun` (exit 0, no message). Skipped
// (true) where FRR is not installed.
::testing::AssertionResult FrrAccepts(const std::string& text) {
  if (::access("/usr/bin/vtysh", X_OK) != 0) return ::testing::AssertionSuccess();
  char path[] = "/tmp/ecmplb_frr_XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return ::testing::AssertionFailure() << "mkstemp";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  const std::string cmd = std::string("/usr/bin/vtysh --dryrun -f ") + path + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (p != nullptr && std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int rc = p != nullptr ? ::pclose(p) : -1;
  ::unlink(path);
  if (!written || rc != 0 || !out.empty()) {
    return ::testing::AssertionFailure() << "vtysh --dryrun: exit " << rc << ": " << out;
  }
  return ::testing::AssertionSuccess();
}

constexpr char kDualStack[] =
    R"({"host": {"address": "10.0.0.12", "address6": "fd00::12", "prefix_length6": 64,
                 "gateway": "10.0.0.1", "gateway6": "fd00::1", "exception_interface": "lbtap"},
  "services": [{"vip": "10.100.0.1", "port": 80}, {"vip": "10.100.0.6", "port": 443},
               {"vip": "fd64::1", "port": 80}, {"vip": "fd64::2", "port": 80}]})";

TEST(FrrRenderTest, FrrAcceptsTheRenderedOspfConfiguration) {
  auto cfg = ParseConfig(kDualStack);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto text = RenderLbHostFrr(*cfg, "lb2", ReadTemplate("lb-host.frr.conf.in"),
                              ReadTemplate("lb-host.ospf6.frr.conf.in"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_TRUE(FrrAccepts(*text)) << *text;
  EXPECT_FALSE(FrrAccepts(*text + "router ospf\n timers throttle spf 0 50\n"));  // the check bites
}

TEST(FrrRenderTest, RendersTheBgpTemplates) {
  const std::string tmpl = ReadTemplate("lb-host.bgp.frr.conf.in");
  const std::string tmpl6 = ReadTemplate("lb-host.bgp6.frr.conf.in");
  auto cfg = ParseConfig(kDualStack);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  BgpPeering peering;  // AS 65001 to the router's AS 65000 at host.gateway(6)
  auto text = RenderLbHostBgp(*cfg, "lb2", peering, tmpl, tmpl6);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_TRUE(FrrAccepts(*text)) << *text;
  for (const char* line :
       {"hostname lb2\n", "ip prefix-list ecmplb-vips seq 5 permit 10.100.0.0/29 ge 32\n",
        "router bgp 65001\n bgp router-id 10.0.0.12\n", " neighbor 10.0.0.1 remote-as 65000\n",
        " neighbor 10.0.0.1 bfd profile fast\n", "  redistribute connected route-map ecmplb-vips\n",
        "  neighbor 10.0.0.1 route-map ecmplb-vips out\n",
        "ipv6 prefix-list ecmplb-vips6 seq 5 permit fd64::/126 ge 128\n",
        " neighbor fd00::1 remote-as 65000\n", "  neighbor fd00::1 activate\n"}) {
    EXPECT_NE(text->find(line), std::string::npos) << line << "\n" << *text;
  }
  for (const char* field : {"${peer}", "${peer6}", "${peer_as}", "${local_as}", "${vip_range}",
                            "${vip6_range}", "${router_id}"}) {
    EXPECT_EQ(text->find(field), std::string::npos) << field;
  }
  // Given peers and AS numbers win over host.gateway(6).
  peering = {64512, 64513, "10.0.0.254", "fd00::fe"};
  auto given = RenderLbHostBgp(*cfg, "lb2", peering, tmpl, tmpl6);
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_NE(given->find("router bgp 64512\n"), std::string::npos);
  EXPECT_NE(given->find(" neighbor 10.0.0.254 remote-as 64513\n"), std::string::npos);
  EXPECT_NE(given->find(" neighbor fd00::fe remote-as 64513\n"), std::string::npos);
  EXPECT_TRUE(FrrAccepts(*given));
  // IPv4 VIPs only: no IPv6 part, no IPv6 peer needed.
  auto v4 = ParseConfig(R"({"host": {"address": "10.0.0.12", "gateway": "10.0.0.1"},
                            "services": [{"vip": "10.100.0.1", "port": 80}]})");
  ASSERT_TRUE(v4.ok()) << v4.status();
  auto only4 = RenderLbHostBgp(*v4, "lb", BgpPeering{}, tmpl, tmpl6);
  ASSERT_TRUE(only4.ok()) << only4.status();
  EXPECT_EQ(only4->find("address-family ipv6"), std::string::npos);
  EXPECT_EQ(only4->find("ecmplb-vips6"), std::string::npos);
  EXPECT_TRUE(FrrAccepts(*only4));
}

TEST(FrrRenderTest, BgpRefusals) {
  const std::string tmpl = ReadTemplate("lb-host.bgp.frr.conf.in");
  const std::string tmpl6 = ReadTemplate("lb-host.bgp6.frr.conf.in");
  auto no_gateway = ParseConfig(R"({"host": {"address": "10.0.0.12"},
      "services": [{"vip": "10.100.0.1", "port": 80}, {"vip": "fd64::1", "port": 80}]})");
  ASSERT_TRUE(no_gateway.ok()) << no_gateway.status();
  auto r = RenderLbHostBgp(*no_gateway, "lb", BgpPeering{}, tmpl, tmpl6);
  EXPECT_EQ(r.status().message(),
            "no BGP peer: give the router's address (--peer), or set host.gateway");
  BgpPeering p;
  p.peer = "10.0.0.1";
  r = RenderLbHostBgp(*no_gateway, "lb", p, tmpl, tmpl6);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("--peer6"), std::string::npos) << r.status();
  p.peer6 = "10.0.0.1";
  EXPECT_EQ(RenderLbHostBgp(*no_gateway, "lb", p, tmpl, tmpl6).status().message(),
            "BGP peer6 '10.0.0.1' is not an IPv6 address");
  p.peer6 = "fd00::1";
  p.peer_as = p.local_as;
  EXPECT_EQ(RenderLbHostBgp(*no_gateway, "lb", p, tmpl, tmpl6).status().code(),
            absl::StatusCode::kInvalidArgument);
  p.peer_as = 23456;
  EXPECT_EQ(RenderLbHostBgp(*no_gateway, "lb", p, tmpl, tmpl6).status().message(),
            "AS 23456 is not an AS number to use");
}

// The example routers' templates (the lab renders them with Python's string.Template, the same
// syntax as FillTemplate): FRR's parser accepts both as filled in for the lab.
TEST(FrrRenderTest, FrrAcceptsTheRouterTemplates) {
  auto ospf = FillTemplate(ReadTemplate("router.frr.conf.in"),
                           {{"hostname", "rtr"}, {"router_id", "10.0.0.1"},
                            {"lb_interface", "rtr-lb"}, {"lb_subnet", "10.0.0.0/24"},
                            {"max_paths", "16"}});
  ASSERT_TRUE(ospf.ok()) << ospf.status();
  EXPECT_TRUE(FrrAccepts(*ospf)) << *ospf;
  auto bgp = FillTemplate(ReadTemplate("router.bgp.frr.conf.in"),
                          {{"hostname", "rtr"}, {"router_id", "10.0.0.1"},
                           {"local_as", "65000"}, {"lb_as", "65001"},
                           {"lb_subnet", "10.0.0.0/24"}, {"lb_subnet6", "fd00::/64"},
                           {"vip_range", "10.100.0.0/24"}, {"vip6_range", "fd64::/126"},
                           {"max_paths", "16"}});
  ASSERT_TRUE(bgp.ok()) << bgp.status();
  EXPECT_NE(bgp->find("bgp listen range 10.0.0.0/24 peer-group ecmplb\n"), std::string::npos);
  EXPECT_TRUE(FrrAccepts(*bgp)) << *bgp;
}

}  // namespace
}  // namespace ecmplb::control
