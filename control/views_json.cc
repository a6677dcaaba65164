// views_json.cc: JSON encoding of the typed views (see views_json.h).
#include "control/views_json.h"

#include "absl/strings/str_cat.h"
#include "common/inet.h"

namespace ecmplb::control {
namespace {

using nlohmann::json;

const char* FlowProtocolName(uint8_t proto) {
  return proto == inet::ip_proto::kTcp ? "tcp" : proto == inet::ip_proto::kUdp ? "udp" : "other";
}

json ToJson(const std::optional<LookupView::Backend>& b) {
  if (!b) return nullptr;
  return {{"id", b->id}, {"address", b->address}, {"weight", b->weight}};
}

}  // namespace

json ToJson(const HealthView& v) {
  json out = {{"workers_healthy", v.workers_healthy},
              {"draining", v.draining},
              {"workers", json::array()},
              {"vips", json::object()},
              {"backends", json::array()}};
  for (const auto& w : v.workers) out["workers"].push_back({{"id", w.id}, {"stalled", w.stalled}});
  for (const auto& x : v.vips) {
    out["vips"][x.vip] = {{"announced", x.announced}, {"reason", x.reason}};
  }
  for (const auto& h : v.backends) {
    json b = {{"service", h.service},
              {"id", h.id},
              {"address", h.address},
              {"up", h.up},
              {"checked", h.checked}};
    if (h.checked) {
      b["last_check"] = h.last_check;
      b["latency_ms"] = h.latency_ms;
      if (h.last_check_age_ms) b["last_check_age_ms"] = *h.last_check_age_ms;
    }
    out["backends"].push_back(std::move(b));
  }
  return out;
}

json ToJson(const ShowView& v) {
  json services = json::array();
  for (const auto& s : v.services) {
    json js = {{"service", s.service},
               {"vip", s.vip},
               {"port", s.port},
               {"protocol", std::string(ProtocolName(s.protocol))},
               {"forward", std::string(ForwardModeName(s.forward))},
               {"hash", std::string(HashModeName(s.hash))},
               {"table_size", s.table_size}};
    json backends = json::array();
    for (const auto& b : s.backends) {
      backends.push_back({{"id", b.id},
                          {"address", b.address},
                          {"port", b.port},
                          {"weight", b.weight},
                          {"state", BackendStateName(b.state)},
                          {"maglev_slots", b.maglev_slots},
                          {"flows", b.flows}});
    }
    js["backends"] = std::move(backends);
    if (s.sorry_backend) {
      js["sorry_backend"] = {{"address", s.sorry_backend->address},
                             {"serving", s.sorry_backend->serving}};
    }
    js["state"] = s.serving ? "serving" : "no usable backend";
    json reserved = json::array();
    for (const auto& r : s.reserved_ids)
      reserved.push_back({{"id", r.id}, {"seconds_left", r.seconds_left}});
    js["reserved_ids"] = std::move(reserved);
    services.push_back(std::move(js));
  }
  json out = {{"generation", v.generation}, {"services", std::move(services)}};
  if (v.save_pending || !v.save_error.empty()) {
    out["config_save"] = {{"pending", v.save_pending}, {"error", v.save_error}};
  }
  if (v.health) out["health"] = ToJson(*v.health);
  if (v.fleet) {
    const FleetView& f = *v.fleet;
    out["fleet"] = {{"cluster", f.cluster},
                    {"host", f.host},
                    {"connected", f.connected},
                    {"last_error", f.last_error},
                    {"applied_version", f.applied_version},
                    {"fingerprint", f.root},
                    {"seen_version", f.seen_version},
                    {"refused_version", f.refused_version},
                    {"refused_reason", f.refused_reason},
                    {"withdraw", f.withdraw},
                    {"kept", f.kept},
                    {"peers", f.peers},
                    {"newest_peer_version", f.newest_peer_version},
                    {"applies", f.applies},
                    {"refusals", f.refusals},
                    {"resyncs", f.resyncs},
                    {"status_writes", f.status_writes}};
  }
  return out;
}

json ToJson(const StatsView& v) {
  auto counters = [](const StatsView::Counters& c) {
    json o = json::object();
    for (size_t i = 0; i < dataplane::kNumCounters; ++i)
      o[std::string(dataplane::kCounterNames[i])] = c[i];
    return o;
  };
  auto parse_name = [](size_t i) {
    return dataplane::ParseResultName(static_cast<dataplane::ParseResult>(i));
  };
  json workers = json::array();
  for (const auto& w : v.workers) {
    json parse = json::object();
    for (size_t i = 1; i < kParseResults; ++i) parse[parse_name(i)] = w.parse[i];
    json jw = {{"worker", w.name},
               {"id", w.id},
               {"counters", counters(w.counters)},
               {"parse", std::move(parse)}};
    if (w.conntrack) {
      const auto& c = *w.conntrack;
      jw["conntrack"] = {
          {"entries", c.entries}, {"capacity", c.capacity},   {"inserts", c.inserts},
          {"updates", c.updates}, {"evictions", c.evictions}, {"expirations", c.expirations},
          {"full", c.full}};
    }
    workers.push_back(std::move(jw));
  }
  // Drops by reason: the drop_* counters without their prefix, then parse_<reason>.
  json drops = json::object();
  for (size_t i = 0; i < dataplane::kNumCounters; ++i) {
    std::string n(dataplane::kCounterNames[i]);
    if (n.rfind("drop_", 0) == 0) drops[n.substr(5)] = v.total[i];
  }
  for (size_t i = 1; i < kParseResults; ++i)
    drops[absl::StrCat("parse_", parse_name(i))] = v.parse_total[i];
  json services = json::array();
  for (const auto& s : v.services) {
    json backends = json::array();
    for (const auto& b : s.backends) {
      backends.push_back(
          {{"id", b.id}, {"address", b.address}, {"packets", b.packets}, {"bytes", b.bytes}});
    }
    services.push_back({{"service", s.service},
                        {"packets", s.packets},
                        {"bytes", s.bytes},
                        {"backends", std::move(backends)}});
  }
  // The counters among which every received packet is counted exactly once: their sum equals
  // rx_packets, per worker and in total, whenever the workers are between bursts.
  json verdicts = json::array();
  for (dataplane::Counter c : dataplane::kReceiveVerdicts)
    verdicts.push_back(dataplane::kCounterNames[static_cast<size_t>(c)]);
  json out = {{"workers", std::move(workers)},
              {"total", counters(v.total)},
              {"drops", std::move(drops)},
              {"verdicts", std::move(verdicts)},
              {"services", std::move(services)}};
  if (v.sync) out["sync"] = ToJson(*v.sync);
  return out;
}

json ToJson(const SyncView& v) {
  json rejected = json::object();
  for (const auto& [reason, n] : v.rejected) rejected[reason] = n;
  return {{"peers", v.peers},
          {"port", v.port},
          {"key_ids", v.key_ids},
          {"send_key_id", v.send_key_id},
          {"events", v.events},
          {"refreshed", v.refreshed},
          {"unsendable", v.unsendable},
          {"entries_sent", v.entries_sent},
          {"messages_sent", v.messages_sent},
          {"bytes_sent", v.bytes_sent},
          {"send_errors", v.send_errors},
          {"messages_received", v.messages_received},
          {"messages_accepted", v.messages_accepted},
          {"entries_applied", v.entries_applied},
          {"rejected", std::move(rejected)},
          {"peer_entries", v.peer_entries},
          {"peer_capacity", v.peer_capacity},
          {"lag_ms", v.lag_ms},
          {"lag_max_ms", v.lag_max_ms},
          {"lag_p50_ms", v.lag_p50_ms},
          {"lag_p99_ms", v.lag_p99_ms},
          {"peers_alive", v.peers_alive},
          {"heartbeats_sent", v.heartbeats_sent},
          {"peer_heals", v.peer_heals},
          {"bulk",
           {{"status", v.bulk_status},
            {"served", v.bulk_served},
            {"entries_sent", v.bulk_entries_sent},
            {"fetched", v.bulk_fetched},
            {"entries_received", v.bulk_entries_received}}}};
}

json ToJson(const ConnsView& v) {
  json flows = json::array();
  for (const auto& f : v.flows) {
    json jf = {{"worker", f.worker},
               {"service", f.service.value_or("(removed)")},
               {"client", f.client},
               {"protocol", FlowProtocolName(f.protocol)},
               {"backend_id", f.backend_id},
               {"backend", f.backend.value_or("(removed)")},
               {"state", conntrack::FlowStateName(f.state)},
               {"last_seen", f.last_seen}};
    if (f.idle_s) jf["idle_s"] = *f.idle_s;
    flows.push_back(std::move(jf));
  }
  return {{"total", v.total}, {"shown", flows.size()}, {"flows", std::move(flows)}};
}

json ToJson(const LookupView& v) {
  json tracked = json::array();
  for (const auto& t : v.tracked_by) {
    tracked.push_back({{"worker", t.worker},
                       {"backend_id", t.backend_id},
                       {"state", conntrack::FlowStateName(t.state)}});
  }
  json out = {{"service", v.service},
              {"client", v.client},
              {"maglev_backend", ToJson(v.maglev_backend)},
              {"tracked", v.tracked()},
              {"tracked_by", std::move(tracked)},
              {"backend", ToJson(v.backend)}};
  if (!v.backend) out["reason"] = "no usable backend";
  return out;
}

json ToJson(const ServiceListView& v) {
  json list = json::array();
  for (const auto& s : v.services) {
    list.push_back({{"service", s.service},
                    {"forward", std::string(ForwardModeName(s.forward))},
                    {"hash", std::string(HashModeName(s.hash))},
                    {"table_size", s.table_size},
                    {"backends", s.backends}});
  }
  return {{"services", std::move(list)}};
}

json ToJson(const ApplyResult& v) {
  json r = {{"service", v.service},
            {"generation", v.generation},
            {"services_rebuilt", v.services_rebuilt},
            {"apply_ms", static_cast<double>(v.apply_us) / 1000}};
  if (v.backend_id) r["backend_id"] = *v.backend_id;
  return r;
}

json ToJson(const ReloadResult& v) {
  return {{"reloaded", true},
          {"services_added", v.services_added},
          {"services_removed", v.services_removed},
          {"services_changed", v.services_changed},
          {"services_rebuilt", v.applied.services_rebuilt},
          {"generation", v.applied.generation},
          {"apply_ms", static_cast<double>(v.applied.apply_us) / 1000}};
}

json ToJson(const ExtensionReply& v) {
  if (const auto* d = std::get_if<DrainReply>(&v)) {
    return {{"draining", true}, {"drain_s", d->drain_s}};
  }
  const auto& f = std::get<FaultReply>(v);
  nlohmann::json out = {{"fault", f.fault}};
  if (f.worker) out["worker"] = *f.worker;
  out["ms"] = f.ms;
  return out;
}

}  // namespace ecmplb::control
