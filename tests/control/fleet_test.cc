// Fleet mode against an in-memory etcd (fake_store.h): the layout (blobs, pointer, digests),
// the tables' fingerprints, the lag rule, the agent following revisions (watch gaps,
// compaction, invalid revisions, a deleted pointer, lease expiry, a host cut off from the
// store, the store down for everyone) and ecmplbctl's compare-and-swap writes.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/config_edit.h"
#include "control/etcd_store.h"
#include "control/fleet.h"
#include "control/fleet_agent.h"
#include "control/fleet_client.h"
#include "tests/control/fake_store.h"

namespace ecmplb::control::fleet {
namespace {

using testing::FakeClient;
using testing::FakeEtcd;

constexpr char kHost[] = R"({"host": {"address": "10.0.0.11", "prefix_length": 24},
  "fleet": {"endpoints": ["http://127.0.0.1:2379"], "cluster": "t", "cache_file": "/tmp/x"}})";

Config Host() {
  auto c = ParseConfig(kHost);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

ServiceConfig Service(int vip, std::vector<int> backends, uint32_t weight = 1) {
  ServiceConfig s;
  s.vip = absl::StrCat("10.100.", vip / 250, ".", vip % 250 + 1);
  s.port = 80;
  s.table_size = 251;
  uint32_t id = 1;
  for (int b : backends) {
    BackendConfig bc;
    bc.id = id++;
    bc.address = absl::StrCat("10.0.0.", 20 + b);
    bc.weight = weight;
    s.backends.push_back(bc);
  }
  return s;
}

TEST(FleetLayoutTest, KeysAndPrefixEnd) {
  FleetConfig f;
  f.cluster = "edge";
  const Layout L = Layout::For(f);
  EXPECT_EQ(L.ConfigKey(), "/ecmplb/edge/config");
  EXPECT_EQ(L.StatusKey("lb1"), "/ecmplb/edge/status/lb1");
  EXPECT_EQ(PrefixEnd("/a/status/"), "/a/status0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
}

TEST(FleetLayoutTest, BlobsRoundTripAndStayWithinTheLimit) {
  std::vector<ServiceConfig> services;
  for (int i = 0; i < 3000; ++i) services.push_back(Service(i, {1, 2, 3, 4, 5, 6, 7, 8}));
  auto blobs = SplitServices(services);
  ASSERT_TRUE(blobs.ok()) << blobs.status();
  EXPECT_GT(blobs->size(), 1u);  // ~1 MiB of JSON: more than one blob
  Pointer p;
  std::map<std::string, std::string> texts;
  size_t count = 0;
  for (const Blob& b : *blobs) {
    EXPECT_LE(b.text.size(), kBlobBytes);
    EXPECT_EQ(Sha256Hex(b.text), b.digest);
    p.blobs.push_back({b.digest, b.services, b.text.size()});
    texts[b.digest] = b.text;
    count += b.services;
  }
  EXPECT_EQ(count, services.size());
  auto joined = JoinBlobs(p, texts);
  ASSERT_TRUE(joined.ok());
  Config host = Host();
  auto back = WithServices(host, *joined);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->services.size(), services.size());
  // An edit of one service changes exactly one blob.
  services[1234].backends[0].weight = 7;
  auto again = SplitServices(services);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), blobs->size());
  size_t differ = 0;
  for (size_t i = 0; i < blobs->size(); ++i) differ += (*blobs)[i].digest != (*again)[i].digest;
  EXPECT_EQ(differ, 1u);
  // A blob that does not match its digest is refused.
  texts[p.blobs[0].digest][3] ^= 1;
  EXPECT_EQ(JoinBlobs(p, texts).status().code(), absl::StatusCode::kDataLoss);
  texts.erase(p.blobs[0].digest);
  EXPECT_EQ(JoinBlobs(p, texts).status().code(), absl::StatusCode::kNotFound);
}

TEST(FleetLayoutTest, PointerAndStatusRoundTrip) {
  Pointer p;
  p.blobs.push_back({std::string(64, 'a'), 3, 100});
  p.id_high["10.100.0.1:80/tcp"] = 9;
  p.writer = "ecmplbctl@lb1";
  auto back = ParsePointer(SerializePointer(p));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  EXPECT_FALSE(ParsePointer("{\"format\": 2, \"blobs\": []}").ok());
  EXPECT_FALSE(ParsePointer("{\"format\": 1, \"blobs\": [{\"digest\": \"../x\"}]}").ok());
  EXPECT_FALSE(ParsePointer("not json").ok());
  HostStatus s;
  s.host = "lb1";
  s.applied_version = 42;
  s.root = "00ff";
  s.announced = {"10.100.0.1"};
  s.serving = true;
  s.down = {"10.100.0.1:80/tcp#2 10.0.0.22"};
  s.refused_version = 43;
  s.refused_reason = "bad";
  auto st = ParseHostStatus(SerializeHostStatus(s));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, s);
}

TEST(FleetFingerprintTest, TablesNotOrderOrHealth) {
  Fingerprints a, b;
  std::vector<ServiceConfig> s1 = {Service(1, {1, 2, 3}), Service(2, {1, 2})};
  std::vector<ServiceConfig> s2 = {s1[1], s1[0]};
  ASSERT_EQ(*a.Update(s1), *b.Update(s2));  // order of services does not matter
  s2[1].backends[0].weight = 2;
  EXPECT_NE(*a.Update(s1), *b.Update(s2));  // a weight does
  EXPECT_NE(a.services().at(s1[0].Name()), b.services().at(s1[0].Name()));
  EXPECT_EQ(a.services().at(s1[1].Name()), b.services().at(s1[1].Name()));
}

HostStatus At(const std::string& host, int64_t version, const std::string& root,
              bool serving = true) {
  HostStatus s;
  s.host = host;
  s.applied_version = version;
  s.root = root;
  s.serving = serving;
  return s;
}

TEST(FleetLagTest, BehindForLongerThanTheGraceWithdraws) {
  LagJudge j(5000, 1);
  const std::vector<HostStatus> peers = {At("b", 7, "r7"), At("c", 7, "r7")};
  EXPECT_EQ(j.Judge(At("a", 6, "r6"), peers, 1000).withdraw, "");
  EXPECT_EQ(j.Judge(At("a", 6, "r6"), peers, 5999).withdraw, "");
  EXPECT_NE(j.Judge(At("a", 6, "r6"), peers, 6000).withdraw, "");
  // Caught up: serve again at once; behind again: the grace starts over.
  EXPECT_EQ(j.Judge(At("a", 7, "r7"), peers, 6100).withdraw, "");
  EXPECT_EQ(j.Judge(At("a", 6, "r6"), peers, 6200).withdraw, "");
}

TEST(FleetLagTest, MajorityFingerprintAtTheSameVersion) {
  LagJudge j(5000, 1);
  // 2 of 3 at version 7 have r7: the third withdraws at once.
  auto v = j.Judge(At("a", 7, "rX"), {At("b", 7, "r7"), At("c", 7, "r7")}, 0);
  EXPECT_NE(v.withdraw, "");
  EXPECT_TRUE(v.disagree);
  // No strict majority (1 vs 1): nobody withdraws, the disagreement is reported.
  v = j.Judge(At("a", 7, "rX"), {At("b", 7, "r7")}, 0);
  EXPECT_EQ(v.withdraw, "");
  EXPECT_TRUE(v.disagree);
  // A peer at another version does not vote.
  v = j.Judge(At("a", 7, "rX"), {At("b", 6, "r6"), At("c", 6, "r6")}, 0);
  EXPECT_EQ(v.withdraw, "");
  EXPECT_FALSE(v.disagree);
}

TEST(FleetLagTest, NeverBelowMinAnnouncing) {
  LagJudge j(0, 2);
  // Only one other host announces: this one keeps announcing (and says why).
  auto v = j.Judge(At("a", 6, "r6"), {At("b", 7, "r7"), At("c", 7, "r7", false)}, 0);
  EXPECT_EQ(v.withdraw, "");
  EXPECT_NE(v.kept.find("min_announcing"), std::string::npos) << v.kept;
  v = j.Judge(At("a", 6, "r6"), {At("b", 7, "r7"), At("c", 7, "r7")}, 0);
  EXPECT_NE(v.withdraw, "");
}

// ---- The agent ----

// One LB host of the test: its connection, its agent, what it applied.
struct TestHost {
  std::unique_ptr<FakeClient> client;
  std::unique_ptr<FleetAgent> agent;
  Config config = Host();
  std::vector<int64_t> applied;
  std::vector<HostStatus> beacons;  // what its sync peers say (the test sets it)
  std::string refuse;               // a host-specific refusal of every revision (test)
  bool serving = true;
};

std::unique_ptr<TestHost> MakeHost(FakeEtcd* etcd, const std::string& name,
                                   uint64_t grace_ms = 3000, uint32_t min_announcing = 1,
                                   const std::string& cache = "") {
  auto h = std::make_unique<TestHost>();
  h->client = std::make_unique<FakeClient>(etcd);
  AgentOptions o;
  o.layout = Layout::For(h->config.fleet);
  o.host = name;
  o.grace_ms = grace_ms;
  o.min_announcing = min_announcing;
  o.cache_file = cache;
  o.unix_ms = [] { return uint64_t{1}; };
  TestHost* raw = h.get();
  h->agent = std::make_unique<FleetAgent>(
      h->client.get(), o,
      [raw](const std::string& services, int64_t version)
          -> absl::StatusOr<std::vector<ServiceConfig>> {
        if (!raw->refuse.empty()) return absl::FailedPreconditionError(raw->refuse);
        Config base = raw->config;
        base.services.clear();
        auto c = WithServices(base, services);
        if (!c.ok()) return c.status();
        raw->config = *c;
        raw->applied.push_back(version);
        return c->services;
      },
      [raw](HostStatus* s) { s->serving = raw->serving; },
      [raw] { return raw->beacons; }, log::Sink());
  return h;
}

// ecmplbctl's side: a client of its own.
struct Writer {
  explicit Writer(FakeEtcd* etcd)
      : client(etcd),
        fc(&client, Layout::For(Host().fleet),
           [this](const std::function<bool()>& done, long t) {
             return testing::RunFake(&client, done, t);
           }) {}
  absl::StatusOr<int64_t> Put(const std::vector<ServiceConfig>& services) {
    auto doc = fc.Read();
    if (!doc.ok()) return doc.status();
    return fc.Write(*doc, services, "test");
  }
  FakeClient client;
  FleetClient fc;
};

void Step(std::vector<TestHost*> hosts, uint64_t from_ms, uint64_t to_ms, uint64_t step = 100) {
  for (uint64_t t = from_ms; t <= to_ms; t += step) {
    for (TestHost* h : hosts) h->agent->Tick(t);
  }
}

TEST(FleetAgentTest, FollowsRevisionsAndPublishesItsStatus) {
  FakeEtcd etcd;
  Writer w(&etcd);
  auto v1 = w.Put({Service(1, {1, 2, 3})});
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto a = MakeHost(&etcd, "lb1");
  auto b = MakeHost(&etcd, "lb2");
  Step({a.get(), b.get()}, 0, 500);
  EXPECT_EQ(a->agent->applied_version(), *v1);
  EXPECT_EQ(b->agent->applied_version(), *v1);
  ASSERT_EQ(a->config.services.size(), 1u);
  // A change written once reaches both, with the same fingerprints.
  auto v2 = w.Put({Service(1, {1, 2, 3, 4}), Service(2, {1})});
  ASSERT_TRUE(v2.ok());
  Step({a.get(), b.get()}, 600, 1500);
  EXPECT_EQ(a->agent->applied_version(), *v2);
  EXPECT_EQ(b->agent->applied_version(), *v2);
  EXPECT_EQ(a->config.services.size(), 2u);
  EXPECT_EQ(a->agent->fingerprints().root(), b->agent->fingerprints().root());
  // Both statuses are in the store, under leases.
  auto st = w.fc.Statuses();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->size(), 2u);
  EXPECT_EQ(st->at("lb1").applied_version, *v2);
  EXPECT_EQ(st->at("lb2").root, FingerprintHex(b->agent->fingerprints().root()));
  EXPECT_EQ(a->agent->View().peers, 1u);
  EXPECT_EQ(a->agent->withdraw(), "");
}

TEST(FleetAgentTest, InvalidRevisionRefusedWholeLastGoodKept) {
  FakeEtcd etcd;
  Writer w(&etcd);
  auto v1 = w.Put({Service(1, {1, 2})});
  ASSERT_TRUE(v1.ok());
  auto a = MakeHost(&etcd, "lb1");
  Step({a.get()}, 0, 300);
  ASSERT_EQ(a->agent->applied_version(), *v1);
  // A revision whose services do not validate (a table size that is not prime), written
  // around ecmplbctl (etcdctl): refused whole.
  ServiceConfig bad = Service(1, {1, 2, 3});
  bad.table_size = 1000;
  auto blobs = SplitServices({bad});
  ASSERT_TRUE(blobs.ok());
  const Layout L = Layout::For(Host().fleet);
  etcd.Put(L.BlobKey((*blobs)[0].digest), (*blobs)[0].text);
  Pointer p;
  p.blobs.push_back({(*blobs)[0].digest, 1, (*blobs)[0].text.size()});
  const int64_t v2 = etcd.Put(L.ConfigKey(), SerializePointer(p));
  // And a pointer that is not even a pointer.
  Step({a.get()}, 400, 800);
  EXPECT_EQ(a->agent->applied_version(), *v1);
  EXPECT_EQ(a->agent->View().refused_version, v2);
  EXPECT_NE(a->agent->View().refused_reason.find("table_size"), std::string::npos)
      << a->agent->View().refused_reason;
  EXPECT_EQ(a->config.services[0].backends.size(), 2u);  // the last good state
  const int64_t v3 = etcd.Put(L.ConfigKey(), "{garbage");
  Step({a.get()}, 900, 1200);
  EXPECT_EQ(a->agent->View().refused_version, v3);
  // A deleted pointer is refused too.
  const int64_t v4 = etcd.Delete(L.ConfigKey());
  Step({a.get()}, 1300, 1600);
  EXPECT_EQ(a->agent->View().refused_version, v4);
  EXPECT_EQ(a->agent->applied_version(), *v1);
  // A good revision after them applies.
  auto v5 = w.Put({Service(1, {1, 2, 3})});
  ASSERT_TRUE(v5.ok()) << v5.status();
  Step({a.get()}, 1700, 2000);
  EXPECT_EQ(a->agent->applied_version(), *v5);
  EXPECT_EQ(a->applied, (std::vector<int64_t>{*v1, *v5}));
}

TEST(FleetAgentTest, WatchGapAndCompactionReadTheStateAgain) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1})}).ok());
  auto a = MakeHost(&etcd, "lb1");
  Step({a.get()}, 0, 300);
  const uint64_t resyncs = a->agent->View().resyncs;
  // The watch breaks; two changes happen before the agent reads again.
  a->client->DropWatches();
  ASSERT_TRUE(w.Put({Service(1, {1, 2})}).ok());
  auto v3 = w.Put({Service(1, {1, 2, 3})});
  Step({a.get()}, 400, 2000);
  EXPECT_EQ(a->agent->applied_version(), *v3);
  EXPECT_GT(a->agent->View().resyncs, resyncs);
  // Cut off while the history it would watch from is compacted away.
  a->client->SetDown(true);
  Step({a.get()}, 2100, 2500);
  auto v4 = w.Put({Service(1, {1, 2, 3, 4})});
  auto v5 = w.Put({Service(1, {2, 3, 4})});
  etcd.Compact(etcd.revision());
  a->client->SetDown(false);
  Step({a.get()}, 2600, 5000);
  EXPECT_EQ(a->agent->applied_version(), *v5);
  EXPECT_TRUE(a->agent->View().connected);
  EXPECT_EQ(a->applied.back(), *v5);
  (void)v4;
}

TEST(FleetAgentTest, CutOffHostWithdrawsAfterTheGraceAndComesBack) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1, 2})}).ok());
  auto a = MakeHost(&etcd, "lb1", 2000);
  auto b = MakeHost(&etcd, "lb2", 2000);
  auto c = MakeHost(&etcd, "lb3", 2000);
  Step({a.get(), b.get(), c.get()}, 0, 500);
  // lb3 loses etcd; a change is made; its sync peers tell it they moved on.
  c->client->SetDown(true);
  auto v2 = w.Put({Service(1, {1, 2, 3})});
  ASSERT_TRUE(v2.ok());
  Step({a.get(), b.get()}, 600, 1000);
  ASSERT_EQ(a->agent->applied_version(), *v2);
  c->beacons = {a->agent->SelfStatus(0), b->agent->SelfStatus(0)};
  Step({c.get()}, 600, 2500);
  EXPECT_EQ(c->agent->withdraw(), "") << "within the grace period";
  Step({c.get()}, 2600, 3000);
  EXPECT_NE(c->agent->withdraw(), "");
  EXPECT_FALSE(c->agent->View().connected);
  // The others serve on.
  Step({a.get(), b.get()}, 1100, 3000);
  EXPECT_EQ(a->agent->withdraw(), "");
  // Reconnected: it catches up and announces again.
  c->client->SetDown(false);
  Step({a.get(), b.get(), c.get()}, 3100, 5000);
  EXPECT_EQ(c->agent->applied_version(), *v2);
  EXPECT_EQ(c->agent->withdraw(), "");
}

TEST(FleetAgentTest, StoreDownForEveryoneWithdrawsNobody) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1, 2})}).ok());
  auto a = MakeHost(&etcd, "lb1", 1000);
  auto b = MakeHost(&etcd, "lb2", 1000);
  Step({a.get(), b.get()}, 0, 500);
  a->client->SetDown(true);
  b->client->SetDown(true);
  a->beacons = {b->agent->SelfStatus(0)};
  b->beacons = {a->agent->SelfStatus(0)};
  Step({a.get(), b.get()}, 600, 10000);
  EXPECT_EQ(a->agent->withdraw(), "");
  EXPECT_EQ(b->agent->withdraw(), "");
  EXPECT_FALSE(a->agent->View().connected);
}

TEST(FleetAgentTest, LaggingHostWithdrawsFromPeersStatuses) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1, 2})}).ok());
  auto a = MakeHost(&etcd, "lb1", 1000);
  auto b = MakeHost(&etcd, "lb2", 1000);
  Step({a.get(), b.get()}, 0, 500);
  // lb2 cannot apply the next revision (e.g. a DR backend off its subnet, which only its
  // snapshot build finds): it lags, and withdraws once the grace is over, although it is
  // connected.
  b->refuse = "DR backend 10.0.0.29 is not on this host's link";
  auto v2 = w.Put({Service(1, {1, 2, 3})});
  ASSERT_TRUE(v2.ok());
  Step({a.get(), b.get()}, 600, 3000);
  EXPECT_EQ(a->agent->applied_version(), *v2);
  EXPECT_NE(b->agent->applied_version(), *v2);
  EXPECT_EQ(b->agent->View().refused_version, *v2);
  EXPECT_NE(b->agent->withdraw(), "");
  EXPECT_EQ(a->agent->withdraw(), "");
}

TEST(FleetAgentTest, AStalledWatchIsNoticedAndReadAgain) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1})}).ok());
  auto a = MakeHost(&etcd, "lb1");
  Step({a.get()}, 0, 500);
  ASSERT_TRUE(a->agent->View().connected);
  // Status writes still succeed, but the watch shows nothing: a change would never arrive.
  a->client->SetWatchStalled(true);
  const uint64_t resyncs = a->agent->View().resyncs;
  auto v2 = w.Put({Service(1, {1, 2})});
  Step({a.get()}, 600, 4000);
  EXPECT_NE(a->agent->applied_version(), *v2) << "the stalled watch delivered nothing";
  // Its own status write never shows up on the watch: after 5 s the agent reads again (at
  // the head), which finds the change even though the watch is still stalled.
  Step({a.get()}, 4100, 9000);
  EXPECT_GT(a->agent->View().resyncs, resyncs);
  EXPECT_EQ(a->agent->applied_version(), *v2);
  a->client->SetWatchStalled(false);
  Step({a.get()}, 9100, 12000);
  EXPECT_TRUE(a->agent->View().connected);
}

TEST(FleetAgentTest, ADeadPeersStatusDoesNotCountAsAnnouncing) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1})}).ok());
  auto a = MakeHost(&etcd, "lb1", 1000, 1);
  auto b = MakeHost(&etcd, "lb2", 1000, 1);
  auto c = MakeHost(&etcd, "lb3", 1000, 1);
  Step({a.get(), b.get(), c.get()}, 0, 500);
  // lb3 dies (its status stays until its lease runs out); lb1 cannot apply the next version.
  a->refuse = "cannot apply";
  ASSERT_TRUE(w.Put({Service(1, {1, 2})}).ok());
  Step({a.get(), b.get()}, 600, 5000);
  // lb2 announces: lb1 withdraws.
  EXPECT_NE(a->agent->withdraw(), "");
  // Now lb2 dies too: the only fresh peer is gone, so lb1 must keep announcing.
  Step({a.get()}, 5100, 10000);
  EXPECT_EQ(a->agent->withdraw(), "");
  EXPECT_NE(a->agent->View().kept.find("min_announcing"), std::string::npos) << a->agent->View().kept;
}

TEST(FleetAgentTest, ExpiredLeaseIsReplacedAndStatusRepublished) {
  FakeEtcd etcd;
  Writer w(&etcd);
  ASSERT_TRUE(w.Put({Service(1, {1})}).ok());
  auto a = MakeHost(&etcd, "lb1");
  Step({a.get()}, 0, 500);
  auto st = w.fc.Statuses();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->count("lb1"), 1u);
  const Layout L = Layout::For(Host().fleet);
  auto kv = etcd.Range(L.StatusKey("lb1"), "", 0);
  ASSERT_EQ(kv->kvs.size(), 1u);
  etcd.ExpireLease(kv->kvs[0].lease);
  EXPECT_EQ(w.fc.Statuses()->count("lb1"), 0u);
  Step({a.get()}, 600, 6000);
  EXPECT_EQ(w.fc.Statuses()->count("lb1"), 1u);
}

TEST(FleetAgentTest, RestartServesTheCacheUntilTheStoreAnswers) {
  FakeEtcd etcd;
  Writer w(&etcd);
  auto v1 = w.Put({Service(1, {1, 2})});
  ASSERT_TRUE(v1.ok());
  char path[] = "/tmp/ecmplb_fleet_cache_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    auto a = MakeHost(&etcd, "lb1", 3000, 1, path);
    Step({a.get()}, 0, 300);
    ASSERT_EQ(a->agent->applied_version(), *v1);
  }
  auto cache = LoadCache(path);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->version, *v1);
  EXPECT_EQ(cache->root, "/ecmplb/t/");
  EXPECT_EQ(cache->pointer.size(), 64u);
  auto restored = WithServices(Host(), cache->services);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->services.size(), 1u);
  // Restarted while etcd is down: it starts from the cache.
  auto a = MakeHost(&etcd, "lb1", 3000, 1, path);
  a->client->SetDown(true);
  ASSERT_TRUE(a->agent->Restore(cache->version, cache->pointer, restored->services).ok());
  Step({a.get()}, 0, 3000);
  EXPECT_EQ(a->agent->applied_version(), *v1);
  EXPECT_TRUE(a->applied.empty());  // nothing re-applied
  EXPECT_EQ(a->agent->withdraw(), "");
  std::remove(path);
}

// ---- etcd's JSON gateway ----

TEST(EtcdGatewayTest, WatchLines) {
  // As etcd 3.4's gateway writes them (keys and values base64, 64-bit numbers as strings).
  auto w = ParseWatchLine(
      R"({"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"L2Vj","create_revision":"2",)"
      R"("mod_revision":"9","value":"e30="}},{"type":"DELETE","kv":{"key":"L2Vj","mod_revision":"9"}}]}})");
  EXPECT_FALSE(w.ended);
  EXPECT_EQ(w.revision, 9);
  ASSERT_EQ(w.events.size(), 2u);
  EXPECT_EQ(w.events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(w.events[0].kv.key, "/ec");
  EXPECT_EQ(w.events[0].kv.value, "{}");
  EXPECT_EQ(w.events[0].kv.mod_revision, 9);
  EXPECT_EQ(w.events[1].type, WatchEvent::Type::kDelete);
  w = ParseWatchLine(R"({"result":{"header":{"revision":"20"},"canceled":true,"compact_revision":"15"}})");
  EXPECT_TRUE(w.ended);
  EXPECT_EQ(w.compact_revision, 15);
  w = ParseWatchLine(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})");
  EXPECT_TRUE(w.ended);
  EXPECT_NE(w.error.find("no leader"), std::string::npos);
  w = ParseWatchLine(R"({"result":{"events":[7]}})");
  EXPECT_TRUE(w.ended);  // not an event: the stream is not trusted further
  EXPECT_FALSE(w.error.empty());
}

// ---- ecmplbctl's writes ----

TEST(FleetClientTest, ConcurrentWritesOneWinsTheOtherGetsAConflict) {
  FakeEtcd etcd;
  Writer w1(&etcd), w2(&etcd);
  ASSERT_TRUE(w1.Put({Service(1, {1, 2})}).ok());
  auto d1 = w1.fc.Read();
  auto d2 = w2.fc.Read();
  ASSERT_TRUE(d1.ok() && d2.ok());
  ASSERT_EQ(d1->version, d2->version);
  auto won = w1.fc.Write(*d1, {Service(1, {1, 2, 3})}, "one");
  auto lost = w2.fc.Write(*d2, {Service(1, {1})}, "two");
  ASSERT_TRUE(won.ok()) << won.status();
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(lost.status().message().find("conflict"), std::string::npos);
  auto now = w1.fc.Read();
  EXPECT_EQ(now->version, *won);
  EXPECT_EQ(now->pointer.writer, "one");
}

TEST(FleetClientTest, EditsNeverReuseARemovedBackendsId) {
  FakeEtcd etcd;
  Writer w(&etcd);
  Config host = Host();
  Command add;
  add.kind = CommandId::kServiceAdd;
  add.service = "10.100.0.1:80/tcp";
  ASSERT_TRUE(w.fc.Edit(host, add, "t").ok());
  Command b;
  b.kind = CommandId::kBackendAdd;
  b.service = add.service;
  b.backend = "10.0.0.21";
  auto r1 = w.fc.Edit(host, b, "t");
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->second.backend_id, 1u);
  Command del = b;
  del.kind = CommandId::kBackendDel;
  ASSERT_TRUE(w.fc.Edit(host, del, "t").ok());
  b.backend = "10.0.0.22";
  auto r2 = w.fc.Edit(host, b, "t");
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->second.backend_id, 2u);  // not 1: hosts may still track flows with it
  // A bad edit writes nothing.
  const int64_t before = etcd.revision();
  Command bad = b;
  bad.kind = CommandId::kBackendSet;
  bad.weight = 100000;
  EXPECT_FALSE(w.fc.Edit(host, bad, "t").ok());
  EXPECT_EQ(etcd.revision(), before);
  // Blobs nothing references are deleted with the pointer swap.
  const Layout L = Layout::For(host.fleet);
  auto blobs = etcd.Range(L.BlobPrefix(), PrefixEnd(L.BlobPrefix()), 0);
  EXPECT_EQ(blobs->kvs.size(), w.fc.Read()->pointer.blobs.size());
}

}  // namespace
}  // namespace ecmplb::control::fleet
