// fleet_client.cc: see fleet_client.h.
#include "control/fleet_client.h"

#include <chrono>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ecmplb::control::fleet {

template <typename T>
absl::StatusOr<T> FleetClient::Wait(
    std::function<void(std::function<void(absl::StatusOr<T>)>)> start, const char* what) {
  auto result = std::make_shared<std::optional<absl::StatusOr<T>>>();
  start([result](absl::StatusOr<T> r) { *result = std::move(r); });
  if (!run_([result] { return result->has_value(); }, timeout_ms_)) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": etcd did not answer within ", timeout_ms_, " ms"));
  }
  return std::move(**result);
}

absl::StatusOr<FleetDoc> FleetClient::Read(bool tolerant) {
  ECMPLB_ASSIGN_OR_RETURN(
      const RangeResult cfg,
      Wait<RangeResult>([&](auto done) { store_->Range(layout_.ConfigKey(), "", 0, done); },
                        "read the fleet's configuration"));
  FleetDoc doc;
  if (cfg.kvs.empty()) {
    doc.services = "[]";
    return doc;
  }
  doc.version = cfg.kvs.front().mod_revision;
  auto unreadable = [&](const absl::Status& st) -> absl::StatusOr<FleetDoc> {
    if (!tolerant) return st;
    doc.pointer = Pointer{};
    doc.services = "[]";
    doc.error = std::string(st.message());
    return doc;
  };
  auto pointer = ParsePointer(cfg.kvs.front().value);
  if (!pointer.ok()) return unreadable(pointer.status());
  doc.pointer = std::move(*pointer);
  std::map<std::string, std::string> texts;
  for (const BlobRef& ref : doc.pointer.blobs) {
    auto read = [&](int64_t at) {
      return Wait<RangeResult>(
          [&](auto done) { store_->Range(layout_.BlobKey(ref.digest), "", at, done); },
          "read a blob of the fleet's configuration");
    };
    auto blob = read(doc.version);
    if (!blob.ok() && blob.status().code() == absl::StatusCode::kOutOfRange) blob = read(0);
    if (!blob.ok()) return blob.status();  // etcd unreachable: not the configuration's fault
    if (!blob->kvs.empty()) texts[ref.digest] = blob->kvs.front().value;
  }
  auto joined = JoinBlobs(doc.pointer, texts);
  if (!joined.ok()) return unreadable(joined.status());
  doc.services = std::move(*joined);
  return doc;
}

absl::StatusOr<int64_t> FleetClient::Write(const FleetDoc& base,
                                           const std::vector<ServiceConfig>& services,
                                           const std::string& writer) {
  ECMPLB_ASSIGN_OR_RETURN(std::vector<Blob> blobs, SplitServices(services));
  Pointer next;
  next.id_high = base.pointer.id_high;
  for (const ServiceConfig& s : services) {
    uint32_t& high = next.id_high[s.Name()];
    for (const BackendConfig& b : s.backends) high = std::max(high, b.id);
  }
  next.writer = writer;
  next.written_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::set<std::string> had, has;
  for (const BlobRef& b : base.pointer.blobs) had.insert(b.digest);
  for (const Blob& b : blobs) {
    next.blobs.push_back({b.digest, b.services, b.text.size()});
    has.insert(b.digest);
  }
  // 1. The blobs the base does not have, in batches within etcd's limits. Nobody reads them
  //    before the pointer names them.
  std::vector<Op> batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    std::vector<Op> ops = std::move(batch);
    batch.clear();
    batch_bytes = 0;
    ECMPLB_ASSIGN_OR_RETURN(
        const TxnResult r,
        Wait<TxnResult>([&](auto done) { store_->Txn({}, std::move(ops), done); },
                        "store the configuration's blobs"));
    (void)r;
    return absl::OkStatus();
  };
  std::set<std::string> stored;
  for (const Blob& b : blobs) {
    if (had.count(b.digest) || !stored.insert(b.digest).second) continue;
    if (batch.size() + 1 > kTxnOps || batch_bytes + b.text.size() > kTxnBytes) {
      ECMPLB_RETURN_IF_ERROR(flush());
    }
    batch.push_back(Op{Op::Type::kPut, layout_.BlobKey(b.digest), b.text, 0});
    batch_bytes += b.text.size();
  }
  ECMPLB_RETURN_IF_ERROR(flush());
  // 2. The pointer, if it is still the one read, and the blobs it no longer names.
  std::vector<Op> ops = {Op{Op::Type::kPut, layout_.ConfigKey(), SerializePointer(next), 0}};
  for (const std::string& d : had) {
    if (!has.count(d) && ops.size() < kTxnOps) {
      ops.push_back(Op{Op::Type::kDelete, layout_.BlobKey(d), "", 0});
    }
  }
  ECMPLB_ASSIGN_OR_RETURN(
      const TxnResult r,
      Wait<TxnResult>(
          [&](auto done) {
            store_->Txn({Compare{layout_.ConfigKey(), base.version}}, std::move(ops), done);
          },
          "swap the configuration's pointer"));
  if (!r.succeeded) {
    int64_t now = 0;
    if (auto cur = Wait<RangeResult>(
            [&](auto done) { store_->Range(layout_.ConfigKey(), "", 0, done); }, "re-read");
        cur.ok() && !cur->kvs.empty()) {
      now = cur->kvs.front().mod_revision;
    }
    return absl::AbortedError(absl::StrCat(
        "conflict: the fleet's configuration changed since it was read (version ", base.version,
        ", now ", now, "); nothing was written: read it again and retry"));
  }
  return r.revision;
}

absl::StatusOr<std::map<std::string, HostStatus>> FleetClient::Statuses() {
  ECMPLB_ASSIGN_OR_RETURN(
      const RangeResult st,
      Wait<RangeResult>(
          [&](auto done) {
            store_->Range(layout_.StatusPrefix(), PrefixEnd(layout_.StatusPrefix()), 0, done);
          },
          "read the hosts' statuses"));
  std::map<std::string, HostStatus> out;
  for (const KeyValue& kv : st.kvs) {
    const std::string host = kv.key.substr(layout_.StatusPrefix().size());
    auto s = ParseHostStatus(kv.value);
    if (!s.ok()) {
      HostStatus bad;
      bad.host = host;
      bad.refused_reason = absl::StrCat("unreadable status: ", s.status().message());
      out[host] = bad;
      continue;
    }
    s->host = host;
    out[host] = std::move(*s);
  }
  return out;
}

absl::StatusOr<std::pair<int64_t, ServiceEdit>> FleetClient::Edit(const Config& host,
                                                                   const Command& cmd,
                                                                   const std::string& writer) {
  ECMPLB_ASSIGN_OR_RETURN(const FleetDoc doc, Read());
  Config base = host;
  base.services.clear();
  auto current = WithServices(base, doc.services);
  if (!current.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the fleet's configuration (version ", doc.version, ") does not validate on this host: ",
        current.status().message(), "; replace it whole with `ecmplbctl fleet put FILE`"));
  }
  ReservedFn reserved;
  if (!cmd.id.has_value()) {
    // Auto ids go above every id the service ever had.
    reserved = [&doc](const std::string& service, uint32_t id) {
      auto it = doc.pointer.id_high.find(service);
      return it != doc.pointer.id_high.end() && id <= it->second;
    };
  }
  ECMPLB_ASSIGN_OR_RETURN(ServiceEdit edit, EditService(*current, cmd, reserved));
  ServiceEdit result = edit;
  Config next = *current;
  ApplyServiceEdit(&next, std::move(edit));
  ECMPLB_RETURN_IF_ERROR(Validate(next));
  ECMPLB_ASSIGN_OR_RETURN(const int64_t version, Write(doc, next.services, writer));
  return std::make_pair(version, std::move(result));
}

}  // namespace ecmplb::control::fleet
