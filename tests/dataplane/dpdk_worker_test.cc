// DPDK tests of the real worker loop and exception path on in-process ring ports, with
// --no-huge: crafted mbufs in, exact packets out (DR, GRE with the mbuf's headroom), traffic
// for the kernel reaching the exception port and the kernel's traffic leaving through the
// data port's own TX queue, multi-segment drops, and snapshot publication (QSBR reclaim)
// while the worker runs. Runs on any machine: no hugepages, no NIC.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_thash.h>

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/dpdk/exception_forwarder.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/publisher.h"
#include "dataplane/dpdk/worker.h"
#include "dataplane/packet/encap.h"
#include "dataplane/packet/parse.h"
#include "dataplane/rss.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::dataplane {
namespace {

using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

const MacAddr kRouterMac = Mac("02:00:00:00:00:fe");

rte_mempool* g_pool = nullptr;

struct RingPort {
  uint16_t id;
  std::vector<rte_ring*> rx, tx;
};

RingPort MakeRingPort(const char* name, unsigned nrx, unsigned ntx) {
  RingPort p;
  for (unsigned i = 0; i < nrx; ++i) {
    std::string n = std::string(name) + "_rx" + std::to_string(i);
    p.rx.push_back(rte_ring_create(n.c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
  }
  for (unsigned i = 0; i < ntx; ++i) {
    std::string n = std::string(name) + "_tx" + std::to_string(i);
    p.tx.push_back(rte_ring_create(n.c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
  }
  int id = rte_eth_from_rings(name, p.rx.data(), nrx, p.tx.data(), ntx, 0);
  EXPECT_GE(id, 0);
  p.id = static_cast<uint16_t>(id);
  PortConfig pc;  // the daemon's own bring-up code
  pc.rx_queues = static_cast<uint16_t>(nrx);
  pc.tx_queues = static_cast<uint16_t>(ntx);
  pc.rx_desc = pc.tx_desc = 512;
  pc.mtu = 0;
  pc.rss = false;  // ring ports have no RSS; the test puts packets on the queue it wants
  absl::Status s = StartPort(p.id, pc, g_pool);
  EXPECT_TRUE(s.ok()) << s;
  return p;
}

rte_mbuf* ToMbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
  std::memcpy(d, bytes.data(), bytes.size());
  return m;
}

std::vector<uint8_t> FromMbuf(rte_mbuf* m) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  std::vector<uint8_t> v(d, d + m->data_len);
  EXPECT_EQ(m->pkt_len, m->data_len);
  rte_pktmbuf_free(m);
  return v;
}

// Waits (bounded) for one packet on `ring`.
std::vector<uint8_t> Receive(rte_ring* ring) {
  void* obj = nullptr;
  for (int i = 0; i < 2000 && rte_ring_dequeue(ring, &obj) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (obj == nullptr) return {};
  return FromMbuf(static_cast<rte_mbuf*>(obj));
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    std::string suffix = std::to_string(n++);
    // Two RX queues, both polled by the one worker (as with af_packet's paired queues); TX
    // queue 0 for the worker, 1 for the exception forwarder.
    data_ = MakeRingPort(("data" + suffix).c_str(), 2, 2);
    exc_ = MakeRingPort(("exc" + suffix).c_str(), 1, 1);
    port_mac_ = *PortMac(data_.id);
    auto cfg = control::ParseConfig(R"({
      "host": {"address": "10.0.0.11", "prefix_length": 24},
      "services": [
        {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
         "backends": [{"address": "10.0.0.21"}]},
        {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre",
         "backends": [{"address": "10.0.0.22"}]}]})");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    config_ = *cfg;
    builder_ = std::make_unique<control::SnapshotBuilder>(port_mac_);
    publisher_ = *SnapshotPublisher::Create(1);
    publisher_->Publish(*builder_->Build(config_));
    for (const auto& [slot, addr] : builder_->neighbor_slots()) {
      MacAddr m = Mac("02:be:00:00:00:00");
      m.bytes[5] = addr.bytes[3];
      neighbors_.Set(slot, m.bytes.data());
    }
    worker_.id = 0;
    worker_.rx_queues = {0, 1};
    worker_.lcore = rte_get_next_lcore(-1, 1, 0);
    worker_.port = data_.id;
    worker_.exception_port = exc_.id;
    worker_.idle = IdleConfig{true, 16, 100};
    worker_.publisher = publisher_.get();
    worker_.stop = &stop_;
    conntrack::Options o;
    o.capacity = 4096;
    o.timeouts.udp = 1;  // ExpiryRunsOnATimeBudgetWhileIdle
    worker_.table = *conntrack::Table::Create(o);
    worker_.counters = std::make_unique<WorkerCounters>();
    worker_.pipeline =
        std::make_unique<Pipeline>(worker_.table.get(), worker_.counters.get(), &neighbors_);
    ASSERT_EQ(rte_eal_remote_launch(WorkerMain, &worker_, worker_.lcore), 0);
  }
  void TearDown() override {
    stop_.store(true);
    rte_eal_wait_lcore(worker_.lcore);
  }

  RingPort data_, exc_;
  MacAddr port_mac_;
  control::Config config_;
  std::unique_ptr<control::SnapshotBuilder> builder_;
  std::unique_ptr<SnapshotPublisher> publisher_;
  NeighborTable neighbors_;
  std::atomic<bool> stop_{false};
  Worker worker_;
};

TEST_F(WorkerTest, ForwardsDrAndGreFromMbufs) {
  auto dr_in = PacketBuilder()
                   .Eth(kRouterMac, port_mac_)
                   .Ipv4(Ip("192.0.2.1"), Ip("10.100.0.1"))
                   .Tcp(1234, 80, 0x02)
                   .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(dr_in)), 0);
  auto out = Receive(data_.tx[0]);
  ASSERT_EQ(out.size(), dr_in.size());
  EXPECT_EQ(MacAddr::FromBytes(out.data()), Mac("02:be:00:00:00:15"));  // 10.0.0.21
  EXPECT_EQ(MacAddr::FromBytes(out.data() + 6), port_mac_);
  EXPECT_TRUE(std::equal(dr_in.begin() + 12, dr_in.end(), out.begin() + 12));

  auto gre_in = PacketBuilder()
                    .Eth(kRouterMac, port_mac_)
                    .Ipv4(Ip("192.0.2.1"), Ip("10.100.0.1"))
                    .Udp(999, 53)
                    .PayloadSize(64)
                    .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(gre_in)), 0);
  out = Receive(data_.tx[0]);
  ASSERT_EQ(out.size(), gre_in.size() + kGreOverhead);
  ParsedPacket p;
  ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kGre);
  EXPECT_EQ(p.dst, Ip("10.0.0.22"));
  EXPECT_TRUE(std::equal(gre_in.begin() + 14, gre_in.end(), out.begin() + 14 + kGreOverhead));
  EXPECT_EQ(worker_.counters->Get(Counter::forward_dr), 1u);
  EXPECT_EQ(worker_.counters->Get(Counter::forward_gre), 1u);
  EXPECT_EQ(worker_.counters->Get(Counter::tx_packets), 2u);
}

// IP fragments through the real loop: later fragments that come before their first one are
// held (their mbufs kept, nothing sent) and leave, forwarded to the first one's backend, when
// it comes; an orphan is freed at the fragment timeout; a worker that stops frees what it
// still holds (every mbuf back in the pool).
TEST_F(WorkerTest, HeldFragmentsLeaveWithTheirFirstOrAtTheTimeout) {
  const unsigned in_use_before = rte_mempool_in_use_count(g_pool);
  auto datagram = [&](uint16_t sport) {
    return PacketBuilder()
        .Eth(kRouterMac, port_mac_)
        .Ipv4(Ip("192.0.2.9"), Ip("10.100.0.1"))
        .Udp(sport, 53)
        .PayloadSize(2500)
        .Build();
  };
  const auto pieces = testing::FragmentFrame(datagram(7777), 1024, 0x5151);
  ASSERT_EQ(pieces.size(), 3u);
  auto wait_for = [&](Counter c, uint64_t n) {
    for (int i = 0; i < 5000 && worker_.counters->Get(c) < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return worker_.counters->Get(c);
  };
  // One at a time, so that the order they are held in is known (the worker polls two queues).
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(pieces[2])), 0);
  ASSERT_EQ(wait_for(Counter::fragment_held, 1), 1u);
  ASSERT_EQ(rte_ring_enqueue(data_.rx[1], ToMbuf(pieces[1])), 0);
  ASSERT_EQ(wait_for(Counter::fragment_held, 2), 2u);
  EXPECT_EQ(rte_ring_count(data_.tx[0]), 0u);
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(pieces[0])), 0);
  // The first fragment, then the two it released in their order of arrival.
  for (size_t k : {0, 2, 1}) {
    const auto out = Receive(data_.tx[0]);
    ASSERT_EQ(out.size(), pieces[k].size() + kGreOverhead) << "fragment " << k;
    ParsedPacket p;
    ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
    EXPECT_EQ(p.proto, inet::ip_proto::kGre);
    EXPECT_EQ(p.dst, Ip("10.0.0.22"));
    EXPECT_TRUE(std::equal(pieces[k].begin() + 14, pieces[k].end(), out.begin() + 14 + kGreOverhead))
        << "fragment " << k;
  }
  EXPECT_EQ(worker_.counters->Get(Counter::fragment_forwarded), 2u);
  EXPECT_EQ(worker_.counters->Get(Counter::fragment_released), 2u);
  // An orphan: freed at the timeout (2 s by default), never sent.
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(testing::FragmentFrame(datagram(1), 1024, 9)[1])),
            0);
  EXPECT_EQ(wait_for(Counter::fragment_timeout, 1), 1u);
  EXPECT_EQ(worker_.counters->Get(Counter::fragment_released), 3u);
  // Another orphan, and the worker stops while it is held.
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(testing::FragmentFrame(datagram(2), 1024, 10)[2])),
            0);
  ASSERT_EQ(wait_for(Counter::fragment_held, 4), 4u);
  stop_.store(true);
  rte_eal_wait_lcore(worker_.lcore);
  EXPECT_EQ(worker_.counters->Get(Counter::fragment_released), 4u);
  EXPECT_EQ(rte_ring_count(data_.tx[0]), 0u);
  EXPECT_EQ(rte_mempool_in_use_count(g_pool), in_use_before);
}

// Expiry runs on the worker's time budget (IdleConfig::housekeeping_us), idle polls included:
// a UDP flow (1 s timeout here) leaves the table while no packet arrives.
TEST_F(WorkerTest, ExpiryRunsOnATimeBudgetWhileIdle) {
  auto in = PacketBuilder()
                .Eth(kRouterMac, port_mac_)
                .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                .Udp(4444, 53)
                .PayloadSize(16)
                .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(in)), 0);
  ASSERT_FALSE(Receive(data_.tx[0]).empty());
  EXPECT_EQ(worker_.table->Count(), 1u);
  for (int i = 0; i < 100 && worker_.table->Count() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(worker_.table->Count(), 0u);
  EXPECT_EQ(worker_.counters->Get(Counter::conntrack_expired), 1u);
  EXPECT_GT(worker_.counters->Get(Counter::idle_polls), 0u);
}

TEST_F(WorkerTest, EveryRxQueueOfTheWorkerIsPolled) {
  auto in = PacketBuilder()
                .Eth(kRouterMac, port_mac_)
                .Ipv4(Ip("192.0.2.9"), Ip("10.100.0.1"))
                .Tcp(2222, 80, 0x02)
                .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[1], ToMbuf(in)), 0);
  auto out = Receive(data_.tx[0]);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(MacAddr::FromBytes(out.data()), Mac("02:be:00:00:00:15"));
}

TEST_F(WorkerTest, ExceptionTrafficReachesTheKernelPortAndBack) {
  auto arp = PacketBuilder()
                 .Eth(kRouterMac, Mac("ff:ff:ff:ff:ff:ff"))
                 .RawEtherType(0x0806)
                 .PayloadSize(28)
                 .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(arp)), 0);
  EXPECT_EQ(Receive(exc_.tx[0]), arp);
  // What the kernel sends leaves through the data port's own queue (not a worker's).
  auto hello = PacketBuilder()
                   .Eth(port_mac_, Mac("01:00:5e:00:00:05"))
                   .Ipv4(Ip("10.0.0.11"), Ip("224.0.0.5"))
                   .Proto(89)
                   .PayloadSize(44)
                   .Build();
  ASSERT_EQ(rte_ring_enqueue(exc_.rx[0], ToMbuf(hello)), 0);
  WorkerCounters c;
  uint32_t moved = 0;
  for (int i = 0; i < 100 && moved == 0; ++i)
    moved = ForwardExceptionBurst(exc_.id, 1, data_.id, 1, &c);
  EXPECT_EQ(moved, 1u);
  EXPECT_EQ(Receive(data_.tx[1]), hello);
  EXPECT_EQ(rte_ring_count(data_.tx[0]), 0u);
}

// The kernel's traffic (OSPF hellos, BFD) leaves through a thread of its own: while the
// thread that started the forwarder (the daemon's control loop) is busy, e.g. in a long
// config apply, every packet the kernel sends still goes out.
TEST_F(WorkerTest, ExceptionForwarderKeepsForwardingWhileControlIsBusy) {
  WorkerCounters c;
  ExceptionForwarder fwd({exc_.id, 1, data_.id, 1}, &c, 20);
  ASSERT_TRUE(fwd.Start().ok());
  std::atomic<bool> control_busy{true};
  std::vector<std::vector<uint8_t>> sent, seen;
  bool all_seen_while_busy = false;
  std::thread kernel([&] {
    for (uint8_t i = 0; i < 3; ++i) {
      auto hello = PacketBuilder()
                       .Eth(port_mac_, Mac("01:00:5e:00:00:05"))
                       .Ipv4(Ip("10.0.0.11"), Ip("224.0.0.5"))
                       .Proto(89)
                       .PayloadSize(44 + i)
                       .Build();
      sent.push_back(hello);
      ASSERT_EQ(rte_ring_enqueue(exc_.rx[0], ToMbuf(hello)), 0);
    }
    for (int i = 0; i < 3; ++i) seen.push_back(Receive(data_.tx[1]));
    all_seen_while_busy = control_busy.load();
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the busy control loop
  control_busy.store(false);
  kernel.join();
  EXPECT_TRUE(all_seen_while_busy);
  EXPECT_EQ(seen, sent);
  EXPECT_EQ(c.Get(Counter::tx_packets), 3u);
  EXPECT_EQ(rte_ring_count(data_.tx[0]), 0u);  // never a worker's queue
  fwd.Stop();
  fwd.Stop();
  EXPECT_FALSE(fwd.running());
}

TEST_F(WorkerTest, MultiSegmentAndMalformedAreDroppedAndCounted) {
  auto pkt = PacketBuilder()
                 .Eth(kRouterMac, port_mac_)
                 .Ipv4(Ip("192.0.2.1"), Ip("10.100.0.1"))
                 .Tcp(1234, 80, 0x02)
                 .Build();
  rte_mbuf* head = ToMbuf(std::vector<uint8_t>(pkt.begin(), pkt.begin() + 20));
  rte_mbuf* tail = ToMbuf(std::vector<uint8_t>(pkt.begin() + 20, pkt.end()));
  ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], head), 0);
  auto runt = std::vector<uint8_t>(pkt.begin(), pkt.begin() + 16);
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(runt)), 0);
  for (int i = 0; i < 2000 && worker_.counters->Get(Counter::rx_packets) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(worker_.counters->Get(Counter::drop_multi_segment), 1u);
  EXPECT_EQ(worker_.counters->Get(Counter::drop_parse), 1u);
  EXPECT_EQ(rte_ring_count(data_.tx[0]), 0u);
}

TEST_F(WorkerTest, NewSnapshotsArePickedUpAndOldOnesReclaimed) {
  // Move the TCP service to GRE while the worker runs.
  config_.services[0].forward = control::ForwardMode::kGre;
  publisher_->Publish(*builder_->Build(config_));
  EXPECT_EQ(publisher_->Pending(), 1u);
  size_t freed = 0;
  for (int i = 0; i < 2000 && freed == 0; ++i) {
    freed = publisher_->Reclaim();
    if (freed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(freed, 1u);
  auto in = PacketBuilder()
                .Eth(kRouterMac, port_mac_)
                .Ipv4(Ip("192.0.2.1"), Ip("10.100.0.1"))
                .Tcp(4321, 80, 0x02)
                .Build();
  ASSERT_EQ(rte_ring_enqueue(data_.rx[0], ToMbuf(in)), 0);
  auto out = Receive(data_.tx[0]);
  ParsedPacket p;
  ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kGre);
}

// On the TAP (RX interrupts: the queue's descriptor), the forwarder sleeps in epoll while the
// kernel sends nothing, instead of waking every few microseconds, and still moves what the
// kernel sends at once. Needs root and /dev/net/tun (skipped otherwise).
TEST(ExceptionForwarderTapTest, SleepsOnTheTapInterruptAndWakesForTheKernel) {
  if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/net/tun";
  }
  const std::string ifname = "ecmplbt" + std::to_string(getpid() % 100000);
  const MacAddr tap_mac = Mac("02:00:00:00:aa:01");
  auto tap = CreateTap(ifname, tap_mac);
  ASSERT_TRUE(tap.ok()) << tap.status();
  PortConfig tc;
  tc.rx_desc = tc.tx_desc = 512;
  tc.mtu = 0;
  tc.rx_interrupts = true;
  ASSERT_TRUE(StartPort(*tap, tc, g_pool).ok());
  RingPort data = MakeRingPort("tapdata", 1, 2);
  WorkerCounters c;
  ExceptionForwarder fwd({*tap, 1, data.id, 1}, &c, 20);
  ASSERT_TRUE(fwd.Start().ok());
  EXPECT_TRUE(fwd.interrupt_driven());
  // No IPv6 on the test TAP: its neighbour discovery would send frames during the idle part.
  ASSERT_EQ(std::system(("sysctl -qw net.ipv6.conf." + ifname + ".disable_ipv6=1").c_str()), 0);
  ASSERT_EQ(std::system(("ip link set dev " + ifname + " up").c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the kernel's own frames
  while (rte_ring_count(data.tx[1]) > 0) Receive(data.tx[1]);

  // Idle: a polling loop with a 20 us sleep would poll thousands of times in 300 ms.
  const uint64_t polls_before = fwd.polls();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(fwd.polls() - polls_before, 50u);
  EXPECT_GT(fwd.interrupt_waits(), 0u);

  // The kernel sends a frame on the TAP (a packet socket stands in for OSPF): it leaves
  // through the data port's exception queue.
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  ASSERT_GE(fd, 0);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  sll.sll_halen = 6;
  auto hello = PacketBuilder()
                   .Eth(tap_mac, Mac("01:00:5e:00:00:05"))
                   .Ipv4(Ip("10.0.0.11"), Ip("224.0.0.5"))
                   .Proto(89)
                   .PayloadSize(44)
                   .Build();
  ASSERT_EQ(
      sendto(fd, hello.data(), hello.size(), 0, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)),
      static_cast<ssize_t>(hello.size()));
  close(fd);
  // The kernel may send its own frames too (IPv6 neighbour discovery on a new link).
  bool seen = false;
  for (int i = 0; i < 20 && !seen; ++i) seen = Receive(data.tx[1]) == hello;
  EXPECT_TRUE(seen);
  fwd.Stop();
  EXPECT_FALSE(fwd.running());
  rte_eth_dev_stop(*tap);
  rte_eth_dev_close(*tap);
}

// The RSS branch of port set-up on a port that has RSS (the TAP PMD): several RX queues, the
// hash fields it offers (fragments included), and ecmplb's key, which the port reports back.
TEST(PortTest, RssPortTakesEcmplbsKey) {
  if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/net/tun";
  }
  const std::string ifname = "ecmplbr" + std::to_string(getpid() % 100000);
  auto tap = CreateTap(ifname, Mac("02:00:00:00:aa:02"));
  ASSERT_TRUE(tap.ok()) << tap.status();
  PortConfig pc;
  pc.rx_queues = 2;
  pc.tx_queues = 2;
  pc.rx_desc = pc.tx_desc = 512;
  pc.mtu = 0;
  pc.rss = true;
  absl::Status s = StartPort(*tap, pc, g_pool);
  ASSERT_TRUE(s.ok()) << s;
  rte_eth_dev_info info;
  ASSERT_EQ(rte_eth_dev_info_get(*tap, &info), 0);
  // The TAP PMD takes the configuration but cannot report its key (ENOTSUP); a port that
  // reports one must report ours (StartPort refuses otherwise).
  uint8_t key[64] = {};
  rte_eth_rss_conf rc{};
  rc.rss_key = key;
  rc.rss_key_len = info.hash_key_size;
  const int got = rte_eth_dev_rss_hash_conf_get(*tap, &rc);
  if (got == 0) {
    EXPECT_EQ(std::memcmp(key, kRssKey, kRssKeyLength), 0);
  } else {
    EXPECT_EQ(got, -ENOTSUP);
  }
  rte_eth_dev_stop(*tap);
  rte_eth_dev_close(*tap);
}

// ecmplb's key is the Microsoft RSS specification's: its published IPv4 TCP test vectors
// come out of rte_softrss with it, so a peer (ecmplb-gen) computes what a NIC computes.
TEST(RssTest, KeyGivesTheSpecificationsTestVectors) {
  struct Vector {
    const char* src;
    uint16_t sport;
    const char* dst;
    uint16_t dport;
    uint32_t hash;
  };
  const Vector vectors[] = {
      {"66.9.149.187", 2794, "161.142.100.80", 1766, 0x51ccc178},
      {"199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626b0ea},
      {"24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b394a},
  };
  for (const Vector& v : vectors) {
    rte_ipv4_tuple t{};
    t.src_addr = Ip(v.src).v4_host();
    t.dst_addr = Ip(v.dst).v4_host();
    t.sport = v.sport;
    t.dport = v.dport;
    uint32_t words[RTE_THASH_V4_L4_LEN];
    std::memcpy(words, &t, sizeof(words));
    EXPECT_EQ(rte_softrss(words, RTE_THASH_V4_L4_LEN, kRssKey), v.hash) << v.src;
  }
  EXPECT_EQ(PeerSteeredQueue(7, 1), 0);
  EXPECT_EQ(PeerSteeredQueue(7, 3), 1);
}

// A port without RSS cannot spread flows over several RX queues: refused with what to do.
TEST(PortTest, StartPortRefusesSeveralQueuesWithoutRss) {
  rte_ring* r[2] = {rte_ring_create("nr_rx0", 64, 0, 0), rte_ring_create("nr_rx1", 64, 0, 0)};
  rte_ring* t[2] = {rte_ring_create("nr_tx0", 64, 0, 0), rte_ring_create("nr_tx1", 64, 0, 0)};
  int id = rte_eth_from_rings("nrport", r, 2, t, 2, 0);
  ASSERT_GE(id, 0);
  PortConfig pc;
  pc.rx_queues = 2;
  pc.tx_queues = 2;
  pc.rss = true;
  absl::Status s = StartPort(static_cast<uint16_t>(id), pc, g_pool);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(std::string(s.message()).find("cannot spread flows"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("--rx-steering=peer"), std::string::npos) << s;
  pc.rss = false;  // peer steering: the queues are the sender's choice
  EXPECT_TRUE(StartPort(static_cast<uint16_t>(id), pc, g_pool).ok());
}

TEST(PortTest, StartPortRefusesMoreQueuesThanOffered) {
  rte_ring* r = rte_ring_create("q_rx", 64, 0, 0);
  rte_ring* t = rte_ring_create("q_tx", 64, 0, 0);
  int id = rte_eth_from_rings("qport", &r, 1, &t, 1, 0);
  ASSERT_GE(id, 0);
  PortConfig pc;
  pc.rx_queues = 1;
  pc.tx_queues = 3;
  absl::Status s = StartPort(static_cast<uint16_t>(id), pc, g_pool);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(std::string(s.message()).find("TX queues, 3 needed"), std::string::npos) << s;
}

}  // namespace
}  // namespace ecmplb::dataplane

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* eal[] = {"dpdk_worker_test", "-l",          "0,1",
                       "--no-huge",        "-m",          "128",
                       "--no-pci",         "--no-shconf", "--log-level=error"};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char**>(eal)) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  ecmplb::dataplane::g_pool =
      rte_pktmbuf_pool_create("test_pool", 2047, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
