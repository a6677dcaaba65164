#include "conntrack/flow_state.h"

#include "gtest/gtest.h"

namespace ecmplb::conntrack {
namespace {

constexpr uint8_t kSynAck = inet::tcp_flag::kSyn | inet::tcp_flag::kAck;

TEST(FlowStateTest, InitialStateFromFirstPacket) {
  EXPECT_EQ(InitialState(true, inet::tcp_flag::kSyn), FlowState::kNew);
  // A flow picked up mid-stream (moved from a failed LB host, or forged): on probation.
  EXPECT_EQ(InitialState(true, inet::tcp_flag::kAck), FlowState::kProbation);
  EXPECT_EQ(InitialState(true, inet::tcp_flag::kAck | inet::tcp_flag::kFin), FlowState::kClosing);
  EXPECT_EQ(InitialState(true, inet::tcp_flag::kRst), FlowState::kClosing);
  EXPECT_EQ(InitialState(true, 0), FlowState::kNew);
  EXPECT_EQ(InitialState(false, inet::tcp_flag::kAck), FlowState::kNew);
}

TEST(FlowStateTest, TcpTransitions) {
  EXPECT_EQ(NextState(FlowState::kNew, true, inet::tcp_flag::kSyn, 0), FlowState::kNew);
  EXPECT_EQ(NextState(FlowState::kNew, true, inet::tcp_flag::kAck, 0), FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kNew, true, kSynAck, 0), FlowState::kNew);
  EXPECT_EQ(NextState(FlowState::kEstablished, true, inet::tcp_flag::kAck, 0),
            FlowState::kEstablished);
  // A retransmitted SYN does not demote an established flow.
  EXPECT_EQ(NextState(FlowState::kEstablished, true, inet::tcp_flag::kSyn, 0),
            FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kEstablished, true, inet::tcp_flag::kFin | inet::tcp_flag::kAck, 0),
            FlowState::kClosing);
  EXPECT_EQ(NextState(FlowState::kEstablished, true, inet::tcp_flag::kRst, 0), FlowState::kClosing);
  EXPECT_EQ(NextState(FlowState::kNew, true, inet::tcp_flag::kRst, 0), FlowState::kClosing);
  // The last ACKs of a close keep it closing.
  EXPECT_EQ(NextState(FlowState::kClosing, true, inet::tcp_flag::kAck, 0), FlowState::kClosing);
  // Port reuse: a fresh SYN on a closing tuple starts over.
  EXPECT_EQ(NextState(FlowState::kClosing, true, inet::tcp_flag::kSyn, 0), FlowState::kNew);
  EXPECT_EQ(NextState(FlowState::kEstablished, true, 0, 0), FlowState::kEstablished);
}

TEST(FlowStateTest, ProbationaryFlowProvesItselfWithAPacketTwoSecondsAfterItsFirst) {
  const uint8_t ack = inet::tcp_flag::kAck;
  EXPECT_EQ(NextState(FlowState::kProbation, true, ack, 0), FlowState::kProbation);
  EXPECT_EQ(NextState(FlowState::kProbation, true, ack, kProbationProofSeconds - 1),
            FlowState::kProbation);
  EXPECT_EQ(NextState(FlowState::kProbation, true, ack, kProbationProofSeconds),
            FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kProbation, true, 0, kProbationProofSeconds + 3),
            FlowState::kEstablished);
  // FIN/RST close it at once; a bare SYN starts the tuple over; SYN-ACK (not from a client) keeps it.
  EXPECT_EQ(NextState(FlowState::kProbation, true, inet::tcp_flag::kRst, 0), FlowState::kClosing);
  EXPECT_EQ(NextState(FlowState::kProbation, true, inet::tcp_flag::kSyn, 0), FlowState::kNew);
  EXPECT_EQ(NextState(FlowState::kProbation, true, kSynAck, 0), FlowState::kProbation);
}

TEST(FlowStateTest, SyncedFlowBecomesLocalOnItsFirstLocalPacket) {
  EXPECT_EQ(NextState(FlowState::kSynced, true, inet::tcp_flag::kAck, 0), FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kSynced, true, kSynAck, 0), FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kSynced, true, inet::tcp_flag::kFin, 0), FlowState::kClosing);
  EXPECT_EQ(NextState(FlowState::kSynced, false, 0, 0), FlowState::kEstablished);
  // A bare SYN on a synced tuple is the client reusing it: a new flow.
  EXPECT_EQ(NextState(FlowState::kSynced, true, inet::tcp_flag::kSyn, 0), FlowState::kNew);
}

TEST(FlowStateTest, RanksProtectProvenFlowsFirst) {
  EXPECT_EQ(RankOf(FlowState::kNew), FlowRank::kNew);
  EXPECT_EQ(RankOf(FlowState::kClosing), FlowRank::kNew);
  EXPECT_LT(RankOf(FlowState::kNew), RankOf(FlowState::kProbation));
  EXPECT_LT(RankOf(FlowState::kProbation), RankOf(FlowState::kSynced));
  EXPECT_LT(RankOf(FlowState::kSynced), RankOf(FlowState::kEstablished));
  EXPECT_STREQ(FlowStateName(FlowState::kProbation), "probation");
  EXPECT_STREQ(FlowStateName(FlowState::kSynced), "synced");
}

TEST(FlowStateTest, NonTcpBecomesEstablishedOnSecondPacket) {
  EXPECT_EQ(NextState(FlowState::kNew, false, 0, 0), FlowState::kEstablished);
  EXPECT_EQ(NextState(FlowState::kEstablished, false, inet::tcp_flag::kFin, 0),
            FlowState::kEstablished);
}

TEST(FlowStateTest, DefaultTimeoutsFollowIpvs) {
  const Timeouts t;
  EXPECT_TRUE(t.Validate().ok());
  EXPECT_EQ(t.For(true, FlowState::kNew), 60u);
  EXPECT_EQ(t.For(true, FlowState::kEstablished), 900u);
  EXPECT_EQ(t.For(true, FlowState::kClosing), 60u);
  EXPECT_EQ(t.For(true, FlowState::kProbation), 60u);
  EXPECT_EQ(t.For(true, FlowState::kSynced), 900u);
  EXPECT_EQ(t.For(false, FlowState::kNew), 300u);
  EXPECT_EQ(t.For(false, FlowState::kEstablished), 300u);
}

TEST(FlowStateTest, ValidateRejectsZeroAndHugeTimeouts) {
  Timeouts t;
  t.tcp_closing = 0;
  absl::Status s = t.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tcp_closing"), std::string::npos);
  t = Timeouts();
  t.udp = 0x80000001u;
  EXPECT_EQ(t.Validate().code(), absl::StatusCode::kInvalidArgument);
  t = Timeouts();
  t.tcp_syn = 0;
  EXPECT_FALSE(t.Validate().ok());
  t = Timeouts();
  t.tcp_established = 0;
  EXPECT_FALSE(t.Validate().ok());
  // Probation must leave room for the proof.
  t = Timeouts();
  t.tcp_probation = kProbationProofSeconds;
  s = t.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tcp_probation"), std::string::npos);
}

TEST(FlowStateTest, Names) {
  EXPECT_STREQ(FlowStateName(FlowState::kNew), "new");
  EXPECT_STREQ(FlowStateName(FlowState::kEstablished), "established");
  EXPECT_STREQ(FlowStateName(FlowState::kClosing), "closing");
}

}  // namespace
}  // namespace ecmplb::conntrack
