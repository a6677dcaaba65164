// summary.cc: see summary.h.
#include "bench/gen/summary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ecmplb::gen {
namespace {

int64_t Loss(const RunResult& r) {
  return static_cast<int64_t>(r.tx_packets) - static_cast<int64_t>(r.check.test_packets());
}
double Ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

}  // namespace

nlohmann::json SummaryJson(const GenOptions& o, const TrafficModel& m, const CheckerOptions& c,
                           const RunResult& r) {
  using nlohmann::json;
  json j;
  json opt;
  opt["config"] = o.config;
  opt["services"] = json::array();
  for (size_t i = 0; i < m.num_services(); ++i) opt["services"].push_back(m.service(i).name);
  opt["flows"] = o.flows;
  opt["new_share"] = o.new_share;
  opt["flood_share"] = o.flood_share;
  opt["flood"] = json::array();
  std::vector<FloodKind> kinds;
  if (o.flood_share > 0) {
    if (auto k = ParseFloodKinds(o.flood); k.ok()) kinds = *k;
  }
  for (FloodKind k : kinds) opt["flood"].push_back(FloodKindName(k));
  opt["flood_net"] = o.flood_net;
  opt["proto"] = o.proto;
  opt["size"] = o.size;
  if (o.vlan >= 0) opt["vlan"] = o.vlan;
  opt["rate"] = o.rate;
  opt["duration"] = o.duration;
  opt["count"] = o.count;
  opt["client_net_v4"] =
      absl::StrCat(m.options().client_v4.base.ToString(), "/", m.options().client_v4.prefix);
  opt["client_net_v6"] =
      absl::StrCat(m.options().client_v6.base.ToString(), "/", m.options().client_v6.prefix);
  opt["src_mac"] = m.options().src_mac.ToString();
  opt["dst_mac"] = m.options().dst_mac.ToString();
  opt["queues"] = o.queues;
  opt["steer"] = o.steer;
  opt["check"] = c.sample == 1 ? std::string("all") : absl::StrCat("sample:", c.sample);
  opt["expect"] = o.expect;
  j["options"] = opt;
  j["port"] = r.port_name;
  j["lcores"] = r.lcores;
  j["flows"] = m.flows();
  j["new_flows"] = r.new_flows;
  j["duration_s"] = r.tx_seconds;
  j["total_s"] = r.total_seconds;
  const uint64_t total_packets = r.tx_packets + r.flood.total_packets();
  j["tx"] = {{"packets", r.tx_packets},
             {"bytes", r.tx_bytes},
             {"mpps", Ratio(static_cast<double>(r.tx_packets), r.tx_seconds) / 1e6},
             {"total_packets", total_packets},
             {"total_bytes", r.tx_bytes + r.flood.total_bytes()},
             {"total_mpps", Ratio(static_cast<double>(total_packets), r.tx_seconds) / 1e6}};
  json per_kind = json::object();
  for (FloodKind k : kinds) {
    per_kind[FloodKindName(k)] = {{"packets", r.flood.packets[static_cast<size_t>(k)]},
                                  {"bytes", r.flood.bytes[static_cast<size_t>(k)]}};
  }
  j["flood"] = {{"packets", r.flood.total_packets()},
                {"bytes", r.flood.total_bytes()},
                {"mpps", Ratio(static_cast<double>(r.flood.total_packets()), r.tx_seconds) / 1e6},
                {"per_kind", std::move(per_kind)}};
  j["rx"] = {{"packets", r.check.rx_packets},
             {"bytes", r.check.rx_bytes},
             {"test_packets", r.check.test_packets()},
             {"mpps", Ratio(static_cast<double>(r.check.rx_packets), r.tx_seconds) / 1e6}};
  j["loss"] = {{"packets", Loss(r)},
               {"ratio", Ratio(static_cast<double>(Loss(r)), static_cast<double>(r.tx_packets))}};
  json q = json::array();
  for (const QueueStats& s : r.queues) {
    q.push_back({{"tx_packets", s.tx_packets},
                 {"tx_bytes", s.tx_bytes},
                 {"tx_flood_packets", s.tx_flood_packets},
                 {"tx_partial_bursts", s.tx_partial_bursts},
                 {"rx_packets", s.rx_packets}});
  }
  j["queues"] = q;
  const CheckCounts& k = r.check;
  j["check"] = {{"checked", k.checked}, {"sampled_out", k.sampled_out},
                {"ok", k.ok},           {"wrong_backend", k.wrong_backend},
                {"moved", k.moved},     {"corrupt", k.corrupt},
                {"unknown", k.unknown}, {"other", k.other},
                {"errors", k.errors()}};
  const LatencyHistogram& h = r.latency;
  j["latency_ns"] = {{"samples", h.count()},    {"min", h.min()},
                     {"p50", h.Quantile(0.5)},  {"p90", h.Quantile(0.9)},
                     {"p99", h.Quantile(0.99)}, {"p99_9", h.Quantile(0.999)},
                     {"max", h.max()}};
  json cdf = json::array();
  for (const auto& [ns, share] : h.Cdf()) cdf.push_back({ns, share});
  j["latency_ns"]["cdf"] = std::move(cdf);
  j["port_stats"] = {{"ipackets", r.port.ipackets}, {"opackets", r.port.opackets},
                     {"imissed", r.port.imissed},   {"ierrors", r.port.ierrors},
                     {"oerrors", r.port.oerrors},   {"rx_nombuf", r.port.rx_nombuf}};
  if (!r.pcap_path.empty()) j["pcap"] = {{"path", r.pcap_path}, {"frames", r.pcap_frames}};
  return j;
}

std::string SummaryText(const GenOptions& o, const TrafficModel& m, const CheckerOptions& c,
                        const RunResult& r) {
  std::string s;
  const CheckCounts& k = r.check;
  const LatencyHistogram& h = r.latency;
  absl::StrAppendFormat(&s,
                        "ecmplb-gen: %zu service%s, %u flows (+%u new), %u B frames, %s, %u "
                        "queue%s (%s), %u lcore%s, port %s\n",
                        m.num_services(), m.num_services() == 1 ? "" : "s",
                        static_cast<unsigned>(m.flows()), static_cast<unsigned>(r.new_flows),
                        o.size, o.expect, o.queues, o.queues == 1 ? "" : "s", o.steer, r.lcores,
                        r.lcores == 1 ? "" : "s", r.port_name);
  absl::StrAppendFormat(&s, "  tx  %llu packets, %llu bytes in %.3f s: %.3f Mpps\n",
                        static_cast<unsigned long long>(r.tx_packets),
                        static_cast<unsigned long long>(r.tx_bytes), r.tx_seconds,
                        Ratio(static_cast<double>(r.tx_packets), r.tx_seconds) / 1e6);
  if (r.flood.total_packets() != 0 || o.flood_share > 0) {
    absl::StrAppendFormat(&s, "  flood %llu packets, %llu bytes (share %g):",
                          static_cast<unsigned long long>(r.flood.total_packets()),
                          static_cast<unsigned long long>(r.flood.total_bytes()), o.flood_share);
    for (size_t i = 0; i < kFloodKinds; ++i) {
      if (r.flood.packets[i] == 0) continue;
      absl::StrAppendFormat(&s, " %s %llu", FloodKindName(static_cast<FloodKind>(i)),
                            static_cast<unsigned long long>(r.flood.packets[i]));
    }
    absl::StrAppendFormat(
        &s, "; tx total %.3f Mpps\n",
        Ratio(static_cast<double>(r.tx_packets + r.flood.total_packets()), r.tx_seconds) / 1e6);
  }
  absl::StrAppendFormat(&s, "  rx  %llu packets (%llu test, %llu other): %.3f Mpps\n",
                        static_cast<unsigned long long>(k.rx_packets),
                        static_cast<unsigned long long>(k.test_packets()),
                        static_cast<unsigned long long>(k.other),
                        Ratio(static_cast<double>(k.rx_packets), r.tx_seconds) / 1e6);
  absl::StrAppendFormat(&s, "  loss %lld packets (%.6f)\n", static_cast<long long>(Loss(r)),
                        Ratio(static_cast<double>(Loss(r)), static_cast<double>(r.tx_packets)));
  absl::StrAppendFormat(
      &s,
      "  check (%s): checked %llu, sampled out %llu: ok %llu, wrong_backend %llu, moved %llu, "
      "corrupt %llu, unknown %llu\n",
      c.sample == 1 ? std::string("all") : absl::StrCat("1 in ", c.sample),
      static_cast<unsigned long long>(k.checked), static_cast<unsigned long long>(k.sampled_out),
      static_cast<unsigned long long>(k.ok), static_cast<unsigned long long>(k.wrong_backend),
      static_cast<unsigned long long>(k.moved), static_cast<unsigned long long>(k.corrupt),
      static_cast<unsigned long long>(k.unknown));
  absl::StrAppendFormat(
      &s, "  latency ns: min %llu p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu (%llu samples)\n",
      static_cast<unsigned long long>(h.min()), static_cast<unsigned long long>(h.Quantile(0.5)),
      static_cast<unsigned long long>(h.Quantile(0.9)),
      static_cast<unsigned long long>(h.Quantile(0.99)),
      static_cast<unsigned long long>(h.Quantile(0.999)), static_cast<unsigned long long>(h.max()),
      static_cast<unsigned long long>(h.count()));
  for (size_t i = 0; i < r.queues.size(); ++i) {
    absl::StrAppendFormat(&s, "  queue %zu: tx %llu (+%llu flood, partial bursts %llu), rx %llu\n",
                          i, static_cast<unsigned long long>(r.queues[i].tx_packets),
                          static_cast<unsigned long long>(r.queues[i].tx_flood_packets),
                          static_cast<unsigned long long>(r.queues[i].tx_partial_bursts),
                          static_cast<unsigned long long>(r.queues[i].rx_packets));
  }
  absl::StrAppendFormat(
      &s, "  port: ipackets %llu opackets %llu imissed %llu oerrors %llu rx_nombuf %llu\n",
      static_cast<unsigned long long>(r.port.ipackets),
      static_cast<unsigned long long>(r.port.opackets),
      static_cast<unsigned long long>(r.port.imissed),
      static_cast<unsigned long long>(r.port.oerrors),
      static_cast<unsigned long long>(r.port.rx_nombuf));
  if (!r.pcap_path.empty()) {
    absl::StrAppendFormat(&s, "  pcap: %s, %llu frames\n", r.pcap_path,
                          static_cast<unsigned long long>(r.pcap_frames));
  }
  return s;
}

}  // namespace ecmplb::gen
