// pcap_writer.cc: see pcap_writer.h.
#include "bench/gen/pcap_writer.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ecmplb::gen {
namespace {
constexpr size_t kBufferBytes = 4 << 20;
}  // namespace

PcapWriter::~PcapWriter() {
  (void)Close();
}

absl::Status PcapWriter::Open(const std::string& path, uint64_t max_records) {
  (void)Close();
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pcap ", path, ": cannot create it: ", std::strerror(errno)));
  }
  buffer_.reset(new char[kBufferBytes]);
  std::setvbuf(file_, buffer_.get(), _IOFBF, kBufferBytes);
  path_ = path;
  max_records_ = max_records;
  records_ = 0;
  failed_ = false;
  struct {
    uint32_t magic;
    uint16_t major, minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, linktype;
  } h{kPcapMagic, 2, 4, 0, 0, kPcapSnapLen, kPcapLinkTypeEthernet};
  static_assert(sizeof(h) == kPcapFileHeaderLen);
  if (std::fwrite(&h, sizeof(h), 1, file_) != 1) failed_ = true;
  return absl::OkStatus();
}

void PcapWriter::Write(std::span<const uint8_t> frame, uint64_t time_ns) {
  if (!wants_more()) return;
  const uint32_t len = static_cast<uint32_t>(frame.size());
  const uint32_t rec[4] = {static_cast<uint32_t>(time_ns / 1'000'000'000),
                           static_cast<uint32_t>(time_ns % 1'000'000'000 / 1000),
                           len < kPcapSnapLen ? len : kPcapSnapLen, len};
  static_assert(sizeof(rec) == kPcapRecordHeaderLen);
  if (std::fwrite(rec, sizeof(rec), 1, file_) != 1 ||
      std::fwrite(frame.data(), 1, rec[2], file_) != rec[2]) {
    failed_ = true;
  }
  ++records_;
}

absl::Status PcapWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  bool bad = failed_;
  if (std::fclose(file_) != 0) bad = true;
  file_ = nullptr;
  buffer_.reset();
  if (bad)
    return absl::DataLossError(absl::StrCat("--pcap ", path_, ": write failed (disk full?)"));
  return absl::OkStatus();
}

}  // namespace ecmplb::gen
