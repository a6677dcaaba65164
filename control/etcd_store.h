// etcd_store.h: fleet::Store over etcd's v3 JSON gateway (POST /v3/kv/range, /v3/kv/txn,
// /v3/watch, /v3/lease/grant, /v3/lease/keepalive) with libcurl's multi interface: no
// request ever blocks the caller; the daemon's event loop waits on Fds() and calls Poll().
// Keys and values travel base64-encoded and 64-bit numbers as strings, as the gateway wants;
// JSON through nlohmann (every field type-checked: nothing received can throw). Transfers
// advance in Poll (curl_multi_perform); Fds gives the event loop their sockets
// (curl_multi_fdset), so an answer wakes the loop. Requests time out (request_timeout_ms),
// at most 4 connections per endpoint are open at once; an error moves on to the
// next endpoint for the following requests. A watch is a long-lived streaming POST whose
// newline-separated responses are handed over one by one.
//
// Thread-safety: one thread owns an EtcdStore.
#pragma once

#include <curl/curl.h>
#include <sys/select.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "control/fleet_store.h"

namespace ecmplb::control::fleet {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379"
  std::string ca_file, cert_file, key_file;
  long request_timeout_ms = 2000;
  long connect_timeout_ms = 1000;
};

// One line of a watch stream as etcd's gateway writes it ({"result": {...}}); a line that is
// not one ends the watch with the reason. Never throws.
WatchResponse ParseWatchLine(absl::string_view line);

class EtcdStore final : public Store {
 public:
  explicit EtcdStore(EtcdOptions options);
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  void Range(std::string key, std::string range_end, int64_t revision, RangeFn done) override;
  void Txn(std::vector<Compare> compares, std::vector<Op> ops, TxnFn done) override;
  uint64_t Watch(std::string key, std::string range_end, int64_t start_revision,
                 WatchFn fn) override;
  void CancelWatch(uint64_t handle) override;
  void LeaseGrant(int64_t ttl_s, LeaseFn done) override;
  void LeaseKeepAlive(int64_t lease, LeaseFn done) override;

  size_t Poll() override;
  void Fds(std::vector<pollfd>* out) const override;
  long TimeoutMs() const override { return timeout_ms_; }
  size_t pending() const override;

  // Blocks (curl_multi_poll) until `done()` or timeout_ms passes; false on timeout. For
  // command-line use (ecmplbctl), never in the daemon.
  bool RunUntil(const std::function<bool()>& done, long timeout_ms);

  const std::string& endpoint() const { return options_.endpoints[endpoint_]; }

 private:
  struct Request;
  using BodyFn = std::function<void(absl::StatusOr<std::string>)>;
  // POSTs `body` to `path`; `done` gets the response body (HTTP 200) or an error.
  void Post(const std::string& path, std::string body, BodyFn done);
  void Start(Request* r);
  void Finish(Request* r, CURLcode code);
  void DeliverWatchLines(Request* r);
  static size_t OnData(char* data, size_t size, size_t n, void* user);
  static int OnTimer(CURLM* multi, long timeout_ms, void* user);

  EtcdOptions options_;
  size_t endpoint_ = 0;
  CURLM* multi_ = nullptr;
  long timeout_ms_ = -1;
  std::map<CURL*, std::unique_ptr<Request>> requests_;
  std::map<uint64_t, CURL*> watches_;
  uint64_t next_watch_ = 1;
  std::vector<std::function<void()>> ready_;  // callbacks to run from Poll
};

}  // namespace ecmplb::control::fleet
