import Foundation
import Testing
@testable import LockvaultCore

/// The monitored cluster's side: reconnect backoff, which connection a failure keeps, and the
/// gaps that samples close (outages, the daemon's own downtime, clocks that jump).
@Suite struct TargetStateMachineTests {
    @Test func aTargetRestartIsOneGapFromTheLastSampleToTheFirstAfter() throws {
        var m = SimulatedMonitor()
        m.sampled(1)
        m.sampled(2)
        // The restart: the sample fails, then reconnecting fails for a while, with backoff.
        m.targetDown(reason: "terminating connection due to administrator command")
        var attempts: [Int] = []
        for cycle in 4...11 {
            if m.target.connect(at: m.now) == .connect {
                m.target.connectFailed(at: m.now)
                attempts.append(cycle)
            }
            m.targetDown(reason: "connection refused")
        }
        // Delays 125 ms, 250 ms, 500 ms, 1 s (each due by the next cycle), then 2 s, then 4 s.
        #expect(attempts == [4, 5, 6, 7, 8, 10], "reconnects no more often than the backoff allows")
        #expect(m.target.connect(at: m.now) != .connect)
        m.now += .seconds(2)
        #expect(m.target.connect(at: m.now) == .connect)
        m.sampled(12)
        m.sampled(13)
        #expect(m.writtenCycles == [1, 2, 12, 13])
        #expect(m.gaps.count == 1, "one gap for the outage, however many cycles it lasted")
        let gap = try #require(m.written[2].gap)
        #expect(gap.start == m.capturedAt[2] && gap.end == m.capturedAt[12])
        #expect(gap.reason == "target unavailable: terminating connection due to administrator command", "the first failure says why")
        #expect(m.target.connect(at: m.now) == .connect, "a sample resets the backoff")
    }

    @Test func aStatementFailureOnAHealthyConnectionKeepsIt() {
        var machine = TargetStateMachine(heartbeatSeconds: 60, random: { 0.5 })
        let timeout = PostgresFailureFacts(stage: .statement, sqlState: "57014", message: "canceling statement due to statement timeout")
        let failure = timeout.classify(side: .target)
        #expect(machine.sampleFailed(failure, facts: timeout, connectionHealthy: true, at: Date()) == .keepConnection)
        #expect(machine.sampleFailed(failure, facts: timeout, connectionHealthy: false, at: Date()) == .reconnect)
        let lost = PostgresFailureFacts(stage: .statement, sqlState: "57P01", connectionLost: true, message: "terminating connection")
        #expect(machine.sampleFailed(lost.classify(side: .target), facts: lost, connectionHealthy: true, at: Date()) == .reconnect)
        #expect(machine.sampleFailed(failure, facts: nil, connectionHealthy: true, at: Date()) == .reconnect)
    }

    @Test func theFirstCycleRecordsTheDaemonsOwnDowntime() throws {
        var m = SimulatedMonitor(heartbeatSeconds: 60)
        #expect(m.target.wantsLastRecordedCycle)
        let stoppedAt = m.wall - 600
        m.sampled(1, lastRecordedCycle: stoppedAt)
        #expect(!m.target.wantsLastRecordedCycle, "asked once per process")
        m.sampled(2)
        let gap = try #require(m.written[0].gap)
        #expect(gap.start == stoppedAt && gap.end == m.capturedAt[1])
        #expect(gap.reason.hasPrefix("lockvault was not recording"))
        #expect(m.gaps.count == 1)

        var recent = SimulatedMonitor(heartbeatSeconds: 60)
        recent.sampled(1, lastRecordedCycle: recent.wall - 30)
        #expect(recent.gaps.isEmpty, "within a heartbeat: no downtime")
    }

    @Test func wallClockJumpsNeverMakeAGapOfNegativeLengthOrOneFromNothing() throws {
        var m = SimulatedMonitor()
        m.sampled(1)
        m.wall += 3600   // forwards: sampling went on, nothing was unobserved
        m.sampled(2)
        #expect(m.gaps.isEmpty)

        // Backwards during a target outage: the gap ends at the new sample, and starts no later.
        m.targetDown()
        m.wall -= 7200
        m.sampled(3)
        let outage = try #require(m.written.last?.gap)
        #expect(outage.end == m.capturedAt[3] && outage.start <= outage.end)

        // Backwards across dropped records: the same.
        var o = SimulatedMonitor(maxBufferedCycles: 1)
        o.vaultUp = false
        o.sampled(1)
        o.wall -= 7200
        o.sampled(2)
        o.vaultUp = true
        o.now += .seconds(15)
        _ = o.flush()
        o.sampled(3)
        #expect(o.writtenCycles == [2, 3])
        let dropped = try #require(o.written[0].gap)
        #expect(dropped.start <= dropped.end && dropped.end == o.capturedAt[2])
    }
}

@Suite struct FailureClassifierTests {
    @Test(arguments: [
        (PostgresFailureFacts(stage: .conninfo, message: "missing \"=\""), MonitorFailure.Code.invalidConnectionString),
        (PostgresFailureFacts(stage: .connect, sqlState: "28P01", isAuthenticationFailure: true, connectionLost: true, message: "password authentication failed"), .authenticationFailed),
        (PostgresFailureFacts(stage: .statement, sqlState: "42501", message: "permission denied"), .insufficientPrivilege),
        (PostgresFailureFacts(stage: .connect, connectionLost: true, message: "connection refused"), .unavailable),
        (PostgresFailureFacts(stage: .statement, sqlState: "55P03", message: "canceling statement due to lock timeout"), .unavailable),
        (PostgresFailureFacts(stage: .statement, sqlState: "57014", message: "canceling statement due to statement timeout"), .unavailable),
        (PostgresFailureFacts(stage: .statement, sqlState: "53300", message: "too many connections"), .unavailable),
        (PostgresFailureFacts(stage: .statement, sqlState: "57P01", connectionLost: true, message: "terminating connection"), .unavailable),
        (PostgresFailureFacts(stage: .statement, sqlState: "42P01", message: "relation does not exist"), .failed),
        (PostgresFailureFacts(stage: .statement, sqlState: "XX000", message: "internal error"), .failed),
    ])
    func theTargetsFailures(facts: PostgresFailureFacts, kind: MonitorFailure.Code) {
        #expect(facts.classify(side: .target, role: "watcher").code == kind)
    }

    @Test func aMissingVaultObjectMeansNotMigrated() {
        for state in ["3F000", "42P01", "42883"] {
            let facts = PostgresFailureFacts(stage: .statement, sqlState: state, message: "does not exist")
            #expect(facts.classify(side: .vault).code == .vaultNotMigrated)
            #expect(facts.classify(side: .vault).message.contains("lockvault migrate"))
        }
    }

    @Test func aMissingPrivilegeSaysWhatToGrant() {
        let facts = PostgresFailureFacts(stage: .statement, sqlState: "42501", message: "permission denied")
        #expect(facts.classify(side: .target, role: "watcher").message.hasSuffix("GRANT pg_monitor TO watcher"))
        #expect(facts.classify(side: .vault, role: "writer").message.hasSuffix("GRANT lock_writer_role TO writer"))
    }

    @Test func onlyTheRecordsOwnFaultsAreRefusals() {
        #expect(PostgresFailureFacts(stage: .statement, sqlState: "23514", message: "check").refusesRecord)
        #expect(PostgresFailureFacts(stage: .statement, sqlState: "22P02", message: "invalid input").refusesRecord)
        #expect(PostgresFailureFacts(stage: .statement, sqlState: "P0001", message: "raised").refusesRecord)
        #expect(!PostgresFailureFacts(stage: .statement, sqlState: "55P03", message: "lock timeout").refusesRecord)
        #expect(!PostgresFailureFacts(stage: .statement, sqlState: "23505", connectionLost: true, message: "lost").refusesRecord)
        #expect(!PostgresFailureFacts(stage: .connect, message: "refused").refusesRecord)
    }
}

@Suite struct ReconnectScheduleTests {
    @Test func oneFailureIsOneStepEvenWhenReportedTwice() {
        var s = ReconnectSchedule(backoff: Backoff(base: .seconds(1), cap: .seconds(8)))
        let t = ContinuousClock.now
        let first = s.failed(at: t, random: 0.999)
        #expect(s.failed(at: t, random: 0.999) == first, "the write that needed the failed connect does not push the retry out")
        #expect(!s.isDue(at: t + .milliseconds(500)))
        #expect(s.isDue(at: first))
        _ = s.failed(at: first, random: 0.999)
        #expect(s.ceiling == .seconds(4), "doubling per failure")
        s.succeeded()
        #expect(s.isDue(at: t) && s.ceiling == .seconds(1))
    }
}
