#include "conntrack/flow_state.h"

#include "absl/strings/str_cat.h"

#include <iterator>

namespace ecmplb::conntrack {

const char* FlowStateName(FlowState s) {
  static constexpr const char* kNames[] = {"new", "established", "closing", "probation",
                                           "synced"};
  static_assert(std::size(kNames) == kFlowStateCount);
  const auto i = static_cast<size_t>(s);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

absl::Status Timeouts::Validate() const {
  constexpr uint32_t kMax = 1u << 31;
  const struct {
    const char* name;
    uint32_t value;
  } all[] = {{"tcp_syn", tcp_syn},
             {"tcp_established", tcp_established},
             {"tcp_closing", tcp_closing},
             {"tcp_probation", tcp_probation},
             {"udp", udp}};
  for (const auto& t : all) {
    if (t.value == 0 || t.value > kMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("conntrack timeout ", t.name, " = ", t.value, " s: must be in [1, 2^31]"));
    }
  }
  if (tcp_probation <= kProbationProofSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "conntrack timeout tcp_probation = ", tcp_probation, " s: must be at least ",
        kProbationProofSeconds + 1, " s, or a flow first seen mid-stream could never prove itself"));
  }
  return absl::OkStatus();
}

uint32_t Timeouts::For(bool is_tcp, FlowState s) const {
  if (!is_tcp) return udp;
  switch (s) {
    case FlowState::kNew:
      return tcp_syn;
    case FlowState::kEstablished:
    case FlowState::kSynced:
      return tcp_established;
    case FlowState::kProbation:
      return tcp_probation;
    case FlowState::kClosing:
      return tcp_closing;
  }
  return tcp_syn;
}

}  // namespace ecmplb::conntrack
