import Foundation
import Testing
@testable import LockvaultCore

/// Drives ``MonitorStateMachine`` the way the Monitor does — one cycle a second, writing
/// whatever it asks for to a simulated vault — with both clocks in the test's hands.
struct SimulatedMonitor {
    var machine: MonitorStateMachine<Int>
    /// Monotonic time (backoff, flush budget).
    var now = ContinuousClock.now
    /// Wall-clock time of the next sample.
    var wall = Date(timeIntervalSince1970: 1_800_000_000)
    var vaultUp = true
    /// Cycle numbers the vault refuses.
    var refused: Set<Int> = []
    /// What one write costs (monotonic time).
    var writeCost: Duration = .milliseconds(10)
    /// What the vault holds, in order: the cycle and the gap written with it.
    var written: [(cycle: Int, gap: CycleGap?)] = []
    /// Writes the vault was asked to take, including failed ones.
    var writeAttempts = 0
    var capturedAt: [Int: Date] = [:]

    static let unavailable = MonitorFailure(kind: .unavailable, message: "cannot reach the vault: connection refused")
    static let refusedFacts = PostgresFailureFacts(stage: .connect, connectionLost: true, message: "connection refused")

    init(maxBufferedCycles: Int = 3600, heartbeatSeconds: Double = 60, random: Double = 0.5) {
        machine = MonitorStateMachine(limits: MonitorLimits(maxBufferedCycles: maxBufferedCycles, flushBudget: .milliseconds(500),
                                                            heartbeatSeconds: heartbeatSeconds),
                                      random: { random })
    }

    /// One cycle that sampled the target: records it and flushes. Returns the vault failure.
    @discardableResult
    mutating func sampled(_ cycle: Int, lastRecordedCycle: Date? = nil) -> MonitorFailure? {
        capturedAt[cycle] = wall
        let gap = machine.cycleSampled(at: wall, lastRecordedCycle: lastRecordedCycle)
        machine.cycleRecorded(cycle, capturedAt: wall, gap: gap)
        let failure = flush()
        tick()
        return failure
    }

    /// One cycle that could not sample the target.
    @discardableResult
    mutating func targetDown(reason: String = "connection refused") -> MonitorFailure? {
        _ = machine.targetLost(MonitorFailure(kind: .unavailable, message: reason), facts: Self.refusedFacts, connectionHealthy: false, at: wall)
        let failure = flush()
        tick()
        return failure
    }

    mutating func tick(_ seconds: Double = 1) {
        now += .milliseconds(Int64(seconds * 1000))
        wall += seconds
    }

    mutating func flush() -> MonitorFailure? {
        var action = machine.flush(at: now)
        while true {
            switch action {
            case .done, .later: return nil
            case .backOff(_, let failure, _): return failure
            case .write(let cycle, let gap, _):
                writeAttempts += 1
                now += writeCost
                if !vaultUp {
                    action = machine.writeFailed(Self.unavailable, facts: Self.refusedFacts, at: now)
                } else if refused.contains(cycle) {
                    action = machine.writeRefused(reason: "new row violates check constraint", at: now)
                } else {
                    written.append((cycle, gap))
                    action = machine.writeSucceeded(at: now)
                }
            }
        }
    }

    var writtenCycles: [Int] { written.map(\.cycle) }
    var gaps: [(cycle: Int, gap: CycleGap)] { written.compactMap { w in w.gap.map { (w.cycle, $0) } } }
}

@Suite struct MonitorStateMachineTests {
    @Test func aFiveMinuteVaultOutageLosesNothingAndRetriesOnlyAfterBackoff() {
        var m = SimulatedMonitor()
        m.sampled(0)
        m.vaultUp = false
        var failures = 0
        for cycle in 1...300 where m.sampled(cycle) != nil { failures += 1 }
        #expect(failures == 300, "every cycle of the outage reports the vault unavailable")
        #expect(m.machine.buffer.count == 300)
        // Backoff (250 ms doubling to 15 s; jitter fixed at half): every cycle while the delay is
        // under a second, then after 2 s, 4 s, and every 7.5 s (8 cycles) — not on every cycle.
        #expect(m.writeAttempts == 44, "\(m.writeAttempts) write attempts in 5 minutes")

        m.vaultUp = true
        var cycle = 301
        while m.machine.buffer.count > 0 && cycle < 340 {
            #expect(m.sampled(cycle) == nil || cycle < 301 + 8, "the vault is tried again within the backoff cap")
            cycle += 1
        }
        #expect(m.writtenCycles == Array(0..<cycle), "every record, in order")
        #expect(m.gaps.isEmpty, "nothing was lost, so there is no gap")
        #expect(m.machine.buffer.lostTotal == 0)
    }

    @Test func theBacklogDrainsWithinTheFlushBudgetPerCycle() {
        var m = SimulatedMonitor()
        m.vaultUp = false
        for cycle in 0..<120 { m.sampled(cycle) }
        m.vaultUp = true
        m.now += .seconds(15)   // past any backoff
        let before = m.written.count
        m.sampled(120)
        #expect(m.written.count - before == 50, "500 ms budget / 10 ms per write")
        #expect(m.machine.buffer.count == 71, "the rest waits for the next cycles")
        m.sampled(121)
        m.sampled(122)
        #expect(m.writtenCycles == Array(0...122))
    }

    @Test func aRefusedRecordBecomesAGapOnTheNextRecordAndHoldsNothingBack() throws {
        var m = SimulatedMonitor()
        m.refused = [2]
        for cycle in 1...3 { #expect(m.sampled(cycle) == nil, "a refusal does not make the vault unavailable") }
        #expect(m.writtenCycles == [1, 3])
        let gap = try #require(m.written[1].gap)
        #expect(gap.start == m.capturedAt[2] && gap.end == m.capturedAt[3])
        #expect(gap.reason == "vault rejected 1 cycle record: new row violates check constraint")
        #expect(m.machine.buffer.lostTotal == 1)
    }

    @Test func aRefusedLastRecordIsCarriedByTheNextCycle() throws {
        var m = SimulatedMonitor()
        m.refused = [1]
        m.sampled(1)
        #expect(m.writtenCycles.isEmpty && m.machine.buffer.stranded != nil)
        m.sampled(2)
        #expect(m.writtenCycles == [2])
        let gap = try #require(m.written[0].gap)
        #expect(gap.start == m.capturedAt[1] && gap.end == m.capturedAt[2])
    }

    @Test func bufferOverflowDropsTheOldestAndTheOldestKeptCarriesTheGap() throws {
        var m = SimulatedMonitor(maxBufferedCycles: 3)
        m.sampled(0)
        m.vaultUp = false
        for cycle in 1...6 { m.sampled(cycle) }
        #expect(m.machine.buffer.count == 3)
        #expect(m.machine.buffer.lostTotal == 3)
        m.vaultUp = true
        m.now += .seconds(15)
        #expect(m.flush() == nil, "the vault is back (a drain before the next sample, as at shutdown)")
        m.sampled(7)
        #expect(m.writtenCycles == [0, 4, 5, 6, 7], "1–3 were dropped; the rest written in order")
        #expect(m.gaps.count == 1)
        let gap = try #require(m.written[1].gap)
        #expect(gap.start == m.capturedAt[1], "the gap starts at the first dropped cycle")
        #expect(gap.end == m.capturedAt[4], "and ends at the first kept one")
        #expect(gap.reason == "vault unavailable: 3 cycle records dropped (buffer limit 3)")
    }

    @Test func aDroppedRecordsOwnOutageWidensTheGap() throws {
        var m = SimulatedMonitor(maxBufferedCycles: 2)
        m.sampled(0)
        m.targetDown(reason: "connection refused")
        m.vaultUp = false
        for cycle in 2...5 { m.sampled(cycle) }   // 2 carries the outage, and is dropped with 3
        m.vaultUp = true
        m.now += .seconds(15)
        _ = m.flush()
        m.sampled(6)
        #expect(m.writtenCycles == [0, 4, 5, 6])
        let gap = try #require(m.written[1].gap)
        #expect(gap.start == m.capturedAt[0], "from the last sample before the outage")
        #expect(gap.end == m.capturedAt[4])
        #expect(gap.reason == "vault unavailable: 2 cycle records dropped (buffer limit 2); target unavailable: connection refused")
    }

    @Test func aTargetRestartIsOneGapFromTheLastSampleToTheFirstAfter() throws {
        var m = SimulatedMonitor()
        m.sampled(1)
        m.sampled(2)
        // The restart: the sample fails, then reconnecting fails for a while, with backoff.
        m.targetDown(reason: "terminating connection due to administrator command")
        var attempts: [Int] = []
        for cycle in 4...11 {
            if m.machine.targetConnect(at: m.now) == .connect {
                m.machine.targetConnectFailed(at: m.now)
                attempts.append(cycle)
            }
            m.targetDown(reason: "connection refused")
        }
        // Delays 125 ms, 250 ms, 500 ms, 1 s (each due by the next cycle), then 2 s, then 4 s.
        #expect(attempts == [4, 5, 6, 7, 8, 10], "reconnects no more often than the backoff allows")
        #expect(m.machine.targetConnect(at: m.now) != .connect)
        m.now += .seconds(2)
        #expect(m.machine.targetConnect(at: m.now) == .connect)
        m.sampled(12)
        m.sampled(13)
        #expect(m.writtenCycles == [1, 2, 12, 13])
        #expect(m.gaps.count == 1, "one gap for the outage, however many cycles it lasted")
        let gap = try #require(m.written[2].gap)
        #expect(gap.start == m.capturedAt[2] && gap.end == m.capturedAt[12])
        #expect(gap.reason == "target unavailable: terminating connection due to administrator command", "the first failure says why")
        #expect(m.machine.targetConnect(at: m.now) == .connect, "a sample resets the backoff")
    }

    @Test func aStatementFailureOnAHealthyConnectionKeepsIt() {
        var machine = MonitorStateMachine<Int>(limits: MonitorLimits(), random: { 0.5 })
        let timeout = PostgresFailureFacts(stage: .statement, sqlState: "57014", message: "canceling statement due to statement timeout")
        let failure = timeout.classify(side: .target)
        #expect(machine.targetLost(failure, facts: timeout, connectionHealthy: true, at: Date()) == .keepConnection)
        #expect(machine.targetLost(failure, facts: timeout, connectionHealthy: false, at: Date()) == .reconnect)
        let lost = PostgresFailureFacts(stage: .statement, sqlState: "57P01", connectionLost: true, message: "terminating connection")
        #expect(machine.targetLost(lost.classify(side: .target), facts: lost, connectionHealthy: true, at: Date()) == .reconnect)
        #expect(machine.targetLost(failure, facts: nil, connectionHealthy: true, at: Date()) == .reconnect)
    }

    @Test func theFirstCycleRecordsTheDaemonsOwnDowntime() throws {
        var m = SimulatedMonitor(heartbeatSeconds: 60)
        #expect(m.machine.wantsLastRecordedCycle)
        let stoppedAt = m.wall - 600
        m.sampled(1, lastRecordedCycle: stoppedAt)
        #expect(!m.machine.wantsLastRecordedCycle, "asked once per process")
        m.sampled(2)
        let gap = try #require(m.written[0].gap)
        #expect(gap.start == stoppedAt && gap.end == m.capturedAt[1])
        #expect(gap.reason.hasPrefix("lockvault was not recording"))
        #expect(m.gaps.count == 1)

        var recent = SimulatedMonitor(heartbeatSeconds: 60)
        recent.sampled(1, lastRecordedCycle: recent.wall - 30)
        #expect(recent.gaps.isEmpty, "within a heartbeat: no downtime")
    }

    @Test func monotonicClockJumpsNeitherStallNorHurryTheVault() {
        var m = SimulatedMonitor()
        m.vaultUp = false
        m.sampled(1)
        for _ in 0..<4 {   // grow the delay: 250 ms, 500 ms, 1 s, 2 s
            m.now = m.machine.vault.nextAttempt!
            #expect(m.flush() != nil)
        }
        let attempts = m.writeAttempts
        m.now = m.machine.vault.nextAttempt! - .milliseconds(1)
        #expect(m.flush() != nil && m.writeAttempts == attempts, "within the backoff: not tried")

        // Forwards an hour: due at once.
        m.now += .seconds(3600)
        m.vaultUp = true
        #expect(m.flush() == nil)
        #expect(m.writtenCycles == [1])

        // Backwards an hour after a failure: the retry an hour "later" is not waited out.
        m.vaultUp = false
        m.sampled(2)
        m.now -= .seconds(3600)
        m.vaultUp = true
        #expect(m.flush() == nil, "tried again despite the clock going back")
        #expect(m.writtenCycles == [1, 2])
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

    @Test func lostRecordsAreNeverWrittenAndTheRestKeepTheirOrder() {
        // A long mixed run: outages of both sides, refusals and overflow; whatever happens, the
        // vault holds a strictly increasing sequence and every missing cycle is inside a gap.
        var m = SimulatedMonitor(maxBufferedCycles: 5)
        m.refused = [7, 30]
        var sampledCycles: [Int] = []
        for cycle in 1...60 {
            m.vaultUp = !(10...25).contains(cycle)
            if (40...44).contains(cycle) {
                m.targetDown()
            } else {
                m.sampled(cycle)
                sampledCycles.append(cycle)
            }
        }
        #expect(m.writtenCycles == m.writtenCycles.sorted() && Set(m.writtenCycles).count == m.writtenCycles.count)
        for missing in Set(sampledCycles).subtracting(m.writtenCycles) {
            let at = m.capturedAt[missing]!
            #expect(m.gaps.contains { $0.gap.start <= at && at <= $0.gap.end }, "cycle \(missing) is covered by a gap")
        }
    }
}

@Suite struct FailureClassifierTests {
    @Test(arguments: [
        (PostgresFailureFacts(stage: .conninfo, message: "missing \"=\""), MonitorFailure.Kind.invalidConnectionString),
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
    func theTargetsFailures(facts: PostgresFailureFacts, kind: MonitorFailure.Kind) {
        #expect(facts.classify(side: .target, role: "watcher").kind == kind)
    }

    @Test func aMissingVaultObjectMeansNotMigrated() {
        for state in ["3F000", "42P01", "42883"] {
            let facts = PostgresFailureFacts(stage: .statement, sqlState: state, message: "does not exist")
            #expect(facts.classify(side: .vault).kind == .vaultNotMigrated)
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
