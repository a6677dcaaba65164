// peer_wait.cc: see peer_wait.h.
#include "control/peer_wait.h"

#include "absl/strings/str_cat.h"

namespace ecmplb::control {

std::string SilentPeerWait::Step(uint64_t now_ms, bool silent, bool held) {
  if (!silent) {  // every peer heard before speaks (a heal fetch follows): a new silence waits
    ready_since_ms_ = 0;
    gave_up_ = false;
    return "";
  }
  if (gave_up_) return "";
  if (held && ready_since_ms_ == 0) ready_since_ms_ = now_ms;
  if (ready_since_ms_ != 0 && now_ms >= ready_since_ms_ + wait_ms_) {
    gave_up_ = true;
    return "";
  }
  return absl::StrCat("waiting for silent flow-sync peers (their flows, by a bulk copy once "
                      "heard; at most ",
                      wait_ms_, " ms once ready)");
}

}  // namespace ecmplb::control
