// options.cc: see options.h.
#include "bench/gen/options.h"

#include <charconv>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ecmplb::gen {

absl::StatusOr<GenOptions> ParseGenOptions(int argc, const char* const* argv) {
  GenOptions o;
  CLI::App app{
      "ecmplb-gen: DPDK traffic source and sink for ecmplb benchmarks. Sends TCP/UDP flows to "
      "the services of an ecmplb config and checks that every frame comes back at the backend "
      "Maglev picks, byte for byte, with its latency.\n"
      "Usage: ecmplb-gen [EAL options] -- --config FILE --dst-mac MAC [options]",
      "ecmplb-gen"};
  app.add_option("--config", o.config, "the ecmplb configuration file (JSON) to target")
      ->required();
  app.add_option("--service", o.services,
                 "target only this service, VIP:PORT/PROTO (e.g. 10.0.0.1:80/tcp, "
                 "[2001:db8::1]:443/udp); repeatable; default: every service");
  app.add_option("--flows", o.flows, "distinct established flows")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}));
  app.add_option("--new-share", o.new_share,
                 "share of packets that open a new flow (TCP SYN / first UDP packet of a flow "
                 "id never used before)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--flood-share", o.flood_share,
                 "share of the frames sent that are flood frames (junk to the balancer host's "
                 "address and non-VIP destinations, not test traffic: counted apart, not in the "
                 "loss), exact over time; 0: none")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--flood", o.flood,
                 "flood kinds, repeatable or a comma list: host-tcp, host-udp, icmp-echo, nonvip, "
                 "garbage, all (default all, in turn)")
      ->delimiter(',');
  app.add_option("--flood-net", o.flood_net,
                 "IPv4 source range of the flood frames, disjoint from --client-net (default "
                 "203.0.113.0/24, RFC 5737)");
  app.add_option("--proto", o.proto, "target the services of this protocol: tcp, udp or mix")
      ->check(CLI::IsMember({"tcp", "udp", "mix"}));
  app.add_option("--size", o.size,
                 "frame size on the wire in bytes, FCS included (the frame sent is 4 bytes "
                 "shorter); raised to what the headers need (IPv6 TCP: 78)")
      ->check(CLI::Range(64u, 1518u));
  app.add_option("--vlan", o.vlan, "send with this 802.1Q VLAN id (PCP 0)")
      ->check(CLI::Range(0, 4095));
  app.add_option("--rate", o.rate,
                 "packets per second, all queues together; 0: as fast as possible")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--duration", o.duration, "seconds to send (default 10 unless --count)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--count", o.count, "packets to send, then stop");
  app.add_option("--client-net", o.client_nets,
                 "client source addresses, CIDR; one IPv4 and/or one IPv6 (defaults "
                 "198.18.0.0/15 and 2001:db8:c::/64, RFC 2544/3849 ranges)");
  app.add_option("--src-mac", o.src_mac, "source MAC of the frames sent (default: the port's)");
  app.add_option("--dst-mac", o.dst_mac,
                 "the balancer's port MAC (destination of the frames sent); required");
  app.add_option("--queues", o.queues, "TX/RX queue pairs on the port")->check(CLI::Range(1, 64));
  app.add_option("--rx-queues", o.rx_queues,
                 "RX queues on the port, if not --queues (memif against ecmplb with W workers: "
                 "W+1, the exception path's TX queue has a ring of its own)")
      ->check(CLI::Range(1, 65));
  app.add_flag("--trials-from-stdin", o.trials_from_stdin,
               "after set-up, run one trial per stdin line (options overriding these), one JSON "
               "line each, on the same port connection");
  app.add_option("--steer", o.steer,
                 "queue of a flow: 'flow' (flow id % queues) or 'softrss' (the balancer's "
                 "Toeplitz hash and key, dataplane/rss.h, modulo queues)")
      ->check(CLI::IsMember({"flow", "softrss"}));
  app.add_option("--check", o.check,
                 "verify 'all' received frames or 'sample:N' (one in N); default: all at --rate "
                 "<= 1 Mpps, sample:16 otherwise");
  app.add_option("--expect", o.expect,
                 "'balancer': frames come back DR/GRE-forwarded by ecmplb; 'loopback': as sent "
                 "with the MACs swapped (testpmd macswap baseline)")
      ->check(CLI::IsMember({"balancer", "loopback"}));
  app.add_option("--pcap", o.pcap, "write the frames sent to this classic pcap file");
  app.add_option("--pcap-count", o.pcap_count,
                 "frames to write to --pcap (default: --count, or 1000000)");
  app.add_flag("--json", o.json, "print one JSON object on stdout at the end (nothing else)");
  app.add_flag("--neighbors", o.neighbors,
               "print 'IP MAC' for every next hop of the config (the permanent neighbour "
               "entries the benchmark installs on ecmplb's exception interface) and exit");
  app.add_option("--port", o.port, "DPDK port id to use");
  app.add_option("--mbufs", o.mbufs, "mbufs in the pool (default: from queues and descriptors)");
  app.add_option("--rx-desc", o.rx_desc, "RX descriptors per queue")->check(CLI::Range(64, 16384));
  app.add_option("--tx-desc", o.tx_desc, "TX descriptors per queue")->check(CLI::Range(64, 16384));
  app.add_option("--drain-ms", o.drain_ms, "after sending, keep receiving this long")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--link-wait", o.link_wait_s, "seconds to wait for the port's link (memif)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-src-mac-check", o.no_src_mac_check,
               "balancer mode: do not require the balancer's MAC as source of returned frames");
  // A single-value option given again takes the last value (CLI11 refuses it by default): a
  // --trials-from-stdin line overrides the command line's options (repeatable ones add).
  for (CLI::Option* opt : app.get_options()) {
    if (opt->get_items_expected_max() == 1) {
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      o.help = true;
      o.help_text = app.help();
      return o;
    }
    return absl::InvalidArgumentError(
        absl::StrCat(e.what(), " (see ecmplb-gen [EAL options] -- --help)"));
  }
  if (!o.neighbors && o.dst_mac.empty()) {
    return absl::InvalidArgumentError(
        "--dst-mac is required: the balancer's port MAC (ecmplb prints it at start-up)");
  }
  if (auto kinds = ParseFloodKinds(o.flood); !kinds.ok()) return kinds.status();
  return o;
}

absl::StatusOr<ModelOptions> ToModelOptions(const GenOptions& o, const MacAddr& port_mac) {
  ModelOptions m;
  m.flows = o.flows;
  for (const std::string& s : o.services) {
    ECMPLB_ASSIGN_OR_RETURN(auto key, ParseServiceText(s));
    m.services.push_back(key);
  }
  m.proto = o.proto == "tcp"   ? ProtoFilter::kTcp
            : o.proto == "udp" ? ProtoFilter::kUdp
                               : ProtoFilter::kMix;
  for (const std::string& c : o.client_nets) {
    ECMPLB_ASSIGN_OR_RETURN(ClientNet net, ParseClientNet(c));
    ClientNet& slot = net.base.is_v4() ? m.client_v4 : m.client_v6;
    if (slot.base.family != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--client-net ", c, ": give at most one range per address family"));
    }
    slot = net;
  }
  m.frame_size = o.size;
  if (o.vlan >= 0) m.vlan = static_cast<uint16_t>(o.vlan);
  m.src_mac = port_mac;
  if (!o.src_mac.empty()) {
    auto mac = MacAddr::Parse(o.src_mac);
    if (!mac.ok()) return absl::InvalidArgumentError("--src-mac: expected aa:bb:cc:dd:ee:ff");
    m.src_mac = *mac;
  }
  if (!o.dst_mac.empty()) {
    auto mac = MacAddr::Parse(o.dst_mac);
    if (!mac.ok()) return absl::InvalidArgumentError("--dst-mac: expected aa:bb:cc:dd:ee:ff");
    m.dst_mac = *mac;
  }
  m.queues = o.queues;
  m.steering = o.steer == "softrss" ? Steering::kSoftRss : Steering::kFlowId;
  return m;
}

absl::StatusOr<CheckerOptions> ToCheckerOptions(const GenOptions& o) {
  CheckerOptions c;
  c.mode = o.expect == "loopback" ? ExpectMode::kLoopback : ExpectMode::kBalancer;
  c.check_src_mac = !o.no_src_mac_check;
  if (o.check.empty()) {
    c.sample = (o.rate > 0 && o.rate <= 1e6) ? 1 : 16;
  } else if (o.check == "all") {
    c.sample = 1;
  } else if (o.check.rfind("sample:", 0) == 0) {
    const std::string n = o.check.substr(7);
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (ec != std::errc() || ptr != n.data() + n.size() || v < 1) {
      return absl::InvalidArgumentError("--check: expected 'all' or 'sample:N' with N >= 1");
    }
    c.sample = v;
  } else {
    return absl::InvalidArgumentError("--check: expected 'all' or 'sample:N' with N >= 1");
  }
  if (o.flood_share > 0) {
    ECMPLB_ASSIGN_OR_RETURN(FloodOptions f, ToFloodOptions(o));
    c.flood_net = f.net;
  }
  return c;
}

absl::StatusOr<FloodOptions> ToFloodOptions(const GenOptions& o) {
  FloodOptions f;
  f.share = o.flood_share;
  ECMPLB_ASSIGN_OR_RETURN(f.kinds, ParseFloodKinds(o.flood));
  auto net = ParseClientNet(o.flood_net);
  if (!net.ok() || !net->base.is_v4()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flood-net ", o.flood_net,
                     ": expected an IPv4 range with a prefix of 8..30, e.g. ", kDefaultFloodNet));
  }
  f.net = *net;
  return f;
}

double EffectiveDuration(const GenOptions& o) {
  if (o.duration > 0) return o.duration;
  return o.count > 0 ? 0.0 : 10.0;
}

uint64_t EffectivePcapCount(const GenOptions& o) {
  if (o.pcap_count > 0) return o.pcap_count;
  return o.count > 0 ? o.count : 1'000'000;
}

}  // namespace ecmplb::gen
