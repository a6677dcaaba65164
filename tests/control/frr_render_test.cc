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

TEST(FrrRenderTest, RendersTheLbHostTemplate) {
  std::ifstream in(ECMPLB_SOURCE_DIR "/frr-conf/lb-host.frr.conf.in");
  ASSERT_TRUE(in) << "template not found";
  std::stringstream ss;
  ss << in.rdbuf();
  auto cfg = ParseConfig(
      R"({"host": {"address": "10.0.0.12", "prefix_length": 24, "exception_interface": "lbtap"},
    "services": [{"vip": "10.100.0.1", "port": 80}, {"vip": "10.100.0.6", "port": 443},
                 {"vip": "2001:db8::1", "port": 80}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto text = RenderLbHostFrr(*cfg, "lb2", ss.str());
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
  auto one = RenderLbHostFrr(*single, "lb", ss.str());
  ASSERT_TRUE(one.ok());
  EXPECT_NE(one->find("network 10.100.0.1/32 area 0\n"), std::string::npos);
  auto none = ParseConfig(R"({"host": {"address": "10.0.0.12"}})");
  EXPECT_EQ(RenderLbHostFrr(*none, "lb", ss.str()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ecmplb::control
