// pcap_writer.h: writes a classic libpcap capture file (magic 0xa1b2c3d4, version 2.4,
// microsecond timestamps, LINKTYPE_ETHERNET, host byte order as libpcap does), readable by
// tcpdump/tshark and replayable with tcpreplay or DPDK's net_pcap
// (--vdev=net_pcap0,rx_pcap=FILE,infinite_rx=1).
//
// Records go through a large user-space buffer: Write() is a copy, with a write(2) only every
// few MiB; the caller writes at most `max_records` (the rest are counted and dropped).
//
// Thread-safety: one writer per file, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace ecmplb::gen {

inline constexpr uint32_t kPcapMagic = 0xa1b2c3d4;
inline constexpr uint32_t kPcapLinkTypeEthernet = 1;
inline constexpr uint32_t kPcapSnapLen = 65535;
inline constexpr size_t kPcapFileHeaderLen = 24;
inline constexpr size_t kPcapRecordHeaderLen = 16;

class PcapWriter {
 public:
  PcapWriter() = default;
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Creates (truncates) `path` and writes the file header.
  absl::Status Open(const std::string& path, uint64_t max_records);
  bool is_open() const { return file_ != nullptr; }
  // True while more records are wanted.
  bool wants_more() const { return file_ != nullptr && records_ < max_records_; }

  // Appends one frame (without FCS) captured at `time_ns` (Unix time in ns).
  void Write(std::span<const uint8_t> frame, uint64_t time_ns);
  // Flushes and closes; returns the first write error, if any.
  absl::Status Close();

  uint64_t records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::string path_;
  uint64_t max_records_ = 0;
  uint64_t records_ = 0;
  bool failed_ = false;
};

}  // namespace ecmplb::gen
