// Tests of `ecmplbctl frr-config`'s rendering: template filling and the fields derived from
// the running configuration, against the real frr-conf/lb-host.frr.conf.in.
#include "control/frr_render.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ecmplb::control
