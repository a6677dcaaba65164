// Tests of the encoders at the edge: a typed view in, the exact socket JSON out (the field
// names, shapes and optional fields `ecmplbctl --json` shows), and the DPDK telemetry
// dictionaries with their key sanitising.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/inet.h"
#include "control/telemetry_views.h"
#include "control/views.h"
#include "control/views_json.h"

namespace ecmplb::control {
namespace {

using dataplane::Counter;
using dataplane::ParseResult;

HealthView SampleHealth() {
  HealthView h;
  h.workers_healthy = false;
  h.workers = {{0, false}, {1, true}};
  h.draining = true;
  h.vips = {{"10.1.1.1", false, "draining"}, {"2001:db8::1", true, "serving"}};
  HealthView::Backend unchecked;
  unchecked.service = "10.1.1.1:80/tcp";
  unchecked.id = 1;
  unchecked.address = "10.0.0.21";
  HealthView::Backend checked = unchecked;
  checked.id = 2;
  checked.address = "10.0.0.22";
  checked.up = false;
  checked.checked = true;
  checked.last_check = "timeout";
  checked.latency_ms = 300;
  checked.last_check_age_ms = 25;
  HealthView::Backend never = checked;
  never.id = 3;
  never.last_check = "not checked yet";
  never.latency_ms = 0;
  never.last_check_age_ms.reset();
  h.backends = {unchecked, checked, never};
  return h;
}

TEST(ViewsJsonTest, Health) {
  EXPECT_EQ(
      ToJson(SampleHealth()).dump(),
      R"({"backends":[{"address":"10.0.0.21","checked":false,"id":1,"service":"10.1.1.1:80/tcp","up":true},)"
      R"({"address":"10.0.0.22","checked":true,"id":2,"last_check":"timeout","last_check_age_ms":25,"latency_ms":300,"service":"10.1.1.1:80/tcp","up":false},)"
      R"({"address":"10.0.0.22","checked":true,"id":3,"last_check":"not checked yet","latency_ms":0,"service":"10.1.1.1:80/tcp","up":false}],)"
      R"("draining":true,"vips":{"10.1.1.1":{"announced":false,"reason":"draining"},"2001:db8::1":{"announced":true,"reason":"serving"}},)"
      R"("workers":[{"id":0,"stalled":false},{"id":1,"stalled":true}],"workers_healthy":false})");
}

TEST(ViewsJsonTest, Show) {
  ShowView v;
  v.generation = 7;
  ShowView::Service s;
  s.service = "10.1.1.1:80/tcp";
  s.vip = "10.1.1.1";
  s.port = 80;
  s.protocol = Protocol::kTcp;
  s.forward = ForwardMode::kGre;
  s.hash = HashMode::kSourceIp;
  s.table_size = 251;
  s.backends = {{1, "10.0.0.21", 80, 2, BackendState::kActive, 200, 3},
                {2, "10.0.0.22", 80, 0, BackendState::kDraining, 0, 1},
                {3, "10.0.0.23", 80, 1, BackendState::kFailed, 51, 0}};
  s.serving = true;
  s.reserved_ids = {{4, 120}};
  v.services.push_back(s);
  ShowView::Service u;
  u.service = "[2001:db8::1]:53/udp";
  u.vip = "2001:db8::1";
  u.port = 53;
  u.protocol = Protocol::kUdp;
  u.table_size = 65537;
  u.sorry_backend = ShowView::SorryBackend{"2001:db8::99", false};
  v.services.push_back(u);
  EXPECT_EQ(
      ToJson(v).dump(),
      R"({"generation":7,"services":[{"backends":[)"
      R"({"address":"10.0.0.21","flows":3,"id":1,"maglev_slots":200,"port":80,"state":"active","weight":2},)"
      R"({"address":"10.0.0.22","flows":1,"id":2,"maglev_slots":0,"port":80,"state":"draining","weight":0},)"
      R"({"address":"10.0.0.23","flows":0,"id":3,"maglev_slots":51,"port":80,"state":"failed","weight":1}],)"
      R"("forward":"gre","hash":"source-ip","port":80,"protocol":"tcp","reserved_ids":[{"id":4,"seconds_left":120}],)"
      R"("service":"10.1.1.1:80/tcp","state":"serving","table_size":251,"vip":"10.1.1.1"},)"
      R"({"backends":[],"forward":"dr","hash":"5tuple","port":53,"protocol":"udp","reserved_ids":[],)"
      R"("service":"[2001:db8::1]:53/udp","sorry_backend":{"address":"2001:db8::99","serving":false},)"
      R"("state":"no usable backend","table_size":65537,"vip":"2001:db8::1"}]})");
  v.health = SampleHealth();
  nlohmann::json with_health = ToJson(v);
  EXPECT_EQ(with_health["health"], ToJson(SampleHealth()));
}

TEST(ViewsJsonTest, Stats) {
  StatsView v;
  StatsView::Worker w;
  w.name = "worker0";
  w.id = 0;
  w.counters[static_cast<size_t>(Counter::rx_packets)] = 10;
  w.counters[static_cast<size_t>(Counter::drop_parse)] = 2;
  w.parse[static_cast<size_t>(ParseResult::kTruncatedIp)] = 2;
  w.conntrack = StatsView::Conntrack{5, 4096, 6, 7, 8, 9, 10};
  StatsView::Worker x;
  x.name = "exception";
  x.id = 1;
  x.counters[static_cast<size_t>(Counter::rx_packets)] = 1;
  v.workers = {w, x};
  v.total[static_cast<size_t>(Counter::rx_packets)] = 11;
  v.total[static_cast<size_t>(Counter::drop_parse)] = 2;
  v.parse_total[static_cast<size_t>(ParseResult::kTruncatedIp)] = 2;
  StatsView::Service s;
  s.service = "10.1.1.1:80/tcp";
  s.packets = 9;
  s.bytes = 900;
  s.backends = {{1, "10.0.0.21", 9, 900}};
  v.services.push_back(s);
  const nlohmann::json j = ToJson(v);
  // Every counter by name, per worker and in total; parse drops by reason (never "ok").
  ASSERT_EQ(j["workers"].size(), 2u);
  EXPECT_EQ(j["workers"][0]["counters"].size(), dataplane::kNumCounters);
  EXPECT_EQ(j["workers"][0]["counters"]["rx_packets"], 10);
  EXPECT_EQ(j["workers"][0]["counters"]["tx_packets"], 0);
  EXPECT_EQ(j["workers"][0]["parse"].size(), kParseResults - 1);
  EXPECT_FALSE(j["workers"][0]["parse"].contains("ok"));
  EXPECT_EQ(j["workers"][0]["parse"]["truncated_ip"], 2);
  EXPECT_EQ(
      j["workers"][0]["conntrack"].dump(),
      R"({"capacity":4096,"entries":5,"evictions":8,"expirations":9,"full":10,"inserts":6,"updates":7})");
  EXPECT_EQ(j["workers"][0]["worker"], "worker0");
  EXPECT_EQ(j["workers"][1]["worker"], "exception");
  EXPECT_EQ(j["workers"][1]["id"], 1);
  EXPECT_FALSE(j["workers"][1].contains("conntrack"));
  EXPECT_EQ(j["total"]["rx_packets"], 11);
  EXPECT_EQ(j["total"].size(), dataplane::kNumCounters);
  // Drops: each drop_* counter without its prefix, then parse_<reason>.
  EXPECT_EQ(j["drops"]["parse"], 2);
  EXPECT_EQ(j["drops"]["parse_truncated_ip"], 2);
  EXPECT_EQ(j["drops"]["parse_not_ip"], 0);
  EXPECT_FALSE(j["drops"].contains("drop_parse"));
  size_t drop_counters = 0;
  for (auto name : dataplane::kCounterNames) drop_counters += name.rfind("drop_", 0) == 0;
  EXPECT_EQ(j["drops"].size(), drop_counters + kParseResults - 1);
  EXPECT_EQ(
      j["services"].dump(),
      R"([{"backends":[{"address":"10.0.0.21","bytes":900,"id":1,"packets":9}],"bytes":900,"packets":9,"service":"10.1.1.1:80/tcp"}])");
  // The verdict counters, by name, in dataplane::kReceiveVerdicts' order: drop_multi_segment
  // last, nothing counted after a verdict (drop_tx_full), no packet or byte count.
  ASSERT_EQ(j["verdicts"].size(), dataplane::kReceiveVerdicts.size());
  EXPECT_EQ(j["verdicts"][0], "drop_other_mac");
  EXPECT_EQ(j["verdicts"].back(), "drop_multi_segment");
  for (const auto& name : j["verdicts"]) {
    EXPECT_TRUE(j["total"].contains(name.get<std::string>())) << name;
    EXPECT_NE(name, "drop_tx_full");
    EXPECT_NE(name, "rx_packets");
  }
  EXPECT_EQ(j.size(), 5u);
}

TEST(ViewsJsonTest, Conns) {
  ConnsView v;
  v.total = 12;
  ConnsView::Flow f;
  f.worker = 1;
  f.service = "10.1.1.1:80/tcp";
  f.client = "192.0.2.7:40000";
  f.protocol = inet::ip_proto::kTcp;
  f.backend_id = 2;
  f.backend = "10.0.0.22";
  f.state = conntrack::FlowState::kEstablished;
  f.last_seen = 90;
  f.idle_s = 10;
  ConnsView::Flow gone;  // its service and backend were removed since
  gone.client = "192.0.2.8:53";
  gone.protocol = inet::ip_proto::kUdp;
  gone.backend_id = 3;
  gone.last_seen = 5;
  ConnsView::Flow other = gone;
  other.protocol = 47;
  v.flows = {f, gone, other};
  EXPECT_EQ(
      ToJson(v).dump(),
      R"j({"flows":[{"backend":"10.0.0.22","backend_id":2,"client":"192.0.2.7:40000","idle_s":10,"last_seen":90,)j"
      R"j("protocol":"tcp","service":"10.1.1.1:80/tcp","state":"established","worker":1},)j"
      R"j({"backend":"(removed)","backend_id":3,"client":"192.0.2.8:53","last_seen":5,"protocol":"udp",)j"
      R"j("service":"(removed)","state":"new","worker":0},)j"
      R"j({"backend":"(removed)","backend_id":3,"client":"192.0.2.8:53","last_seen":5,"protocol":"other",)j"
      R"j("service":"(removed)","state":"new","worker":0}],"shown":3,"total":12})j");
}

TEST(ViewsJsonTest, Lookup) {
  LookupView v;
  v.service = "10.1.1.1:80/tcp";
  v.client = "192.0.2.7:40000";
  v.maglev_backend = LookupView::Backend{1, "10.0.0.21", 1};
  v.tracked_by = {{0, 2, conntrack::FlowState::kEstablished}};
  v.backend = LookupView::Backend{2, "10.0.0.22", 0};
  EXPECT_EQ(
      ToJson(v).dump(),
      R"({"backend":{"address":"10.0.0.22","id":2,"weight":0},"client":"192.0.2.7:40000",)"
      R"("maglev_backend":{"address":"10.0.0.21","id":1,"weight":1},"service":"10.1.1.1:80/tcp",)"
      R"("tracked":true,"tracked_by":[{"backend_id":2,"state":"established","worker":0}]})");
  LookupView none;
  none.service = "10.1.1.1:80/tcp";
  none.client = "192.0.2.7:1";
  EXPECT_EQ(
      ToJson(none).dump(),
      R"({"backend":null,"client":"192.0.2.7:1","maglev_backend":null,)"
      R"("reason":"no usable backend","service":"10.1.1.1:80/tcp","tracked":false,"tracked_by":[]})");
}

TEST(ViewsJsonTest, ServiceListApplyAndExtensions) {
  ServiceListView list;
  list.services = {{"10.1.1.1:80/tcp", ForwardMode::kDr, HashMode::kFiveTuple, 65537, 3}};
  EXPECT_EQ(
      ToJson(list).dump(),
      R"({"services":[{"backends":3,"forward":"dr","hash":"5tuple","service":"10.1.1.1:80/tcp","table_size":65537}]})");
  ApplyResult service_change{"10.1.1.1:80/tcp", std::nullopt, 4, 1, 1500};
  EXPECT_EQ(ToJson(service_change).dump(),
            R"({"apply_ms":1.5,"generation":4,"service":"10.1.1.1:80/tcp","services_rebuilt":1})");
  ApplyResult backend_change{"10.1.1.1:80/tcp", 7, 5, 1, 250};
  EXPECT_EQ(
      ToJson(backend_change).dump(),
      R"({"apply_ms":0.25,"backend_id":7,"generation":5,"service":"10.1.1.1:80/tcp","services_rebuilt":1})");
  EXPECT_EQ(ToJson(ExtensionReply(DrainReply{5})).dump(), R"({"drain_s":5,"draining":true})");
  EXPECT_EQ(ToJson(ExtensionReply(FaultReply{"stall-worker", 1, 300})).dump(),
            R"({"fault":"stall-worker","ms":300,"worker":1})");
}

TEST(TelemetryViewsTest, KeysAreSanitised) {
  EXPECT_EQ(TelemetryKey("10.100.0.1"), "10_100_0_1");
  EXPECT_EQ(TelemetryKey("[2001:db8::1]:80/tcp"), "_2001_db8__1__80/tcp");
  EXPECT_EQ(TelemetryKey("a_B/9"), "a_B/9");
}

TEST(TelemetryViewsTest, HealthDictionaries) {
  HealthView h = SampleHealth();
  EXPECT_EQ(TelemetryVips(h), (TelemetryDict{{"10_1_1_1", 0}, {"2001_db8__1", 1}}));
  EXPECT_EQ(TelemetryBackends(h),
            (TelemetryDict{
                {"10_1_1_1_80/tcp/1", 1}, {"10_1_1_1_80/tcp/2", 0}, {"10_1_1_1_80/tcp/3", 0}}));
  TelemetryViews views({});
  EXPECT_TRUE(views.Vips().empty());  // nothing before the first health view
  views.SetHealth(h);
  EXPECT_EQ(views.Vips(), TelemetryVips(h));
  EXPECT_EQ(views.Backends(), TelemetryBackends(h));
}

TEST(TelemetryViewsTest, WorkerDictionaries) {
  dataplane::WorkerCounters c0, c1;
  c0.counters[static_cast<size_t>(Counter::rx_packets)].Add(3);
  c0.counters[static_cast<size_t>(Counter::tx_packets)].Add(2);
  c1.counters[static_cast<size_t>(Counter::rx_packets)].Add(4);
  conntrack::Options co;
  co.capacity = 1024;
  auto table = *conntrack::Table::Create(co);
  std::atomic<uint64_t> beat0{17}, beat1{18};
  TelemetryViews views({WorkerView{0, &c0, table.get(), "worker0", &beat0},
                        WorkerView{1, &c1, table.get(), "worker1", &beat1}});
  const TelemetryDict counters = views.Counters();
  ASSERT_EQ(counters.size(), dataplane::kNumCounters);
  EXPECT_EQ(counters[static_cast<size_t>(Counter::rx_packets)],
            (std::pair<std::string, uint64_t>{"rx_packets", 7}));
  EXPECT_EQ(counters[static_cast<size_t>(Counter::tx_packets)].second, 2u);
  EXPECT_EQ(views.Workers(), (TelemetryDict{{"worker0/heartbeat", 17},
                                            {"worker0/rx_packets", 3},
                                            {"worker0/tx_packets", 2},
                                            {"worker0/conntrack_entries", 0},
                                            {"worker1/heartbeat", 18},
                                            {"worker1/rx_packets", 4},
                                            {"worker1/tx_packets", 0},
                                            {"worker1/conntrack_entries", 0}}));
}

}  // namespace
}  // namespace ecmplb::control
