import Foundation
import Testing
@testable import LockvaultCore

/// The vault side, driven as the VaultWriter drives it (``SimulatedMonitor``): every decision
/// about a cycle's write — buffering, backoff, gaps, what is sent, the spool — without a database.
@Suite struct VaultStateMachineTests {
    @Test func aFiveMinuteVaultOutageLosesNothingAndRetriesOnlyAfterBackoff() {
        var m = SimulatedMonitor()
        m.sampled(0)
        m.vaultUp = false
        var failures = 0
        for cycle in 1...300 where m.sampled(cycle) != nil { failures += 1 }
        #expect(failures == 300, "every cycle of the outage reports the vault unavailable")
        #expect(m.vault.buffer.count == 300)
        // Backoff (250 ms doubling to 15 s; jitter fixed at half): every cycle while the delay is
        // under a second, then after 2 s, 4 s, and every 7.5 s (8 cycles) — not on every cycle.
        #expect(m.vaultCalls == 2 + 43, "a connect and a write for cycle 0, then \(m.vaultCalls - 2) attempts in 5 minutes")

        m.vaultUp = true
        var cycle = 301
        while m.vault.buffer.count > 0 && cycle < 340 {
            #expect(m.sampled(cycle) == nil || cycle < 301 + 8, "the vault is tried again within the backoff cap")
            cycle += 1
        }
        #expect(m.writtenCycles == Array(0..<cycle), "every record, in order")
        #expect(m.gaps.isEmpty, "nothing was lost, so there is no gap")
        #expect(m.vault.buffer.lostTotal == 0)
    }

    @Test func theBacklogDrainsWithinTheFlushBudgetPerCycle() {
        var m = SimulatedMonitor()
        m.vaultUp = false
        for cycle in 0..<120 { m.sampled(cycle) }
        m.vaultUp = true
        m.now += .seconds(15)   // past any backoff
        let before = m.written.count
        m.sampled(120)
        #expect(m.written.count - before == 49, "500 ms budget / 10 ms per call: a connect and 49 writes")
        #expect(m.vault.buffer.count == 72, "the rest waits for the next cycles")
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
        #expect(m.vault.buffer.lostTotal == 1)
    }

    @Test func aRefusedLastRecordIsCarriedByTheNextCycle() throws {
        var m = SimulatedMonitor()
        m.refused = [1]
        m.sampled(1)
        #expect(m.writtenCycles.isEmpty && m.vault.buffer.stranded != nil)
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
        #expect(m.vault.buffer.count == 3)
        #expect(m.vault.buffer.lostTotal == 3)
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

    @Test func monotonicClockJumpsNeitherStallNorHurryTheVault() {
        var m = SimulatedMonitor()
        m.vaultUp = false
        m.sampled(1)
        for _ in 0..<4 {   // grow the delay: 250 ms, 500 ms, 1 s, 2 s
            m.now = m.vault.schedule.nextAttempt!
            #expect(m.flush() != nil)
        }
        let attempts = m.vaultCalls
        m.now = m.vault.schedule.nextAttempt! - .milliseconds(1)
        #expect(m.flush() != nil && m.vaultCalls == attempts, "within the backoff: not tried")

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

    // MARK: What of a cycle is sent

    @Test func aSteadyClusterCostsTheVaultOnlyItsHeartbeat() {
        var m = SimulatedMonitor(heartbeatSeconds: 60)
        m.rows = { _ in ["lock a": 1, "lock b": 1] }
        for cycle in 0..<130 { m.sampled(cycle) }
        #expect(m.writtenCycles == [0, 60, 120], "the first cycle, then one heartbeat a minute")
        #expect(m.written.map(\.plan) == [.all, .changes(send: [], end: []), .changes(send: [], end: [])])
        #expect(m.vault.buffer.isEmpty, "skipped cycles are done with, not buffered")
    }

    @Test func onlyWhatChangedIsSentAndAGapIsAlwaysSent() throws {
        var m = SimulatedMonitor()
        m.rows = { $0 < 2 ? ["a": 1, "b": 1] : ["a": 1, "b": 2, "c": 1] }
        m.sampled(0)
        m.sampled(1)
        m.sampled(2)
        #expect(m.written.map(\.plan) == [.all, .changes(send: ["b", "c"], end: [])])
        m.rows = { _ in ["a": 1, "b": 2, "c": 1] }
        m.targetDown()
        m.sampled(4)
        #expect(m.writtenCycles == [0, 2, 4], "nothing changed, but the cycle carries the outage's gap")
        #expect(try #require(m.written.last).gap != nil)
    }

    @Test func aFailedWriteAfterAPartialChangeMakesTheNextWriteWhole() {
        var m = SimulatedMonitor()
        m.rows = { $0 < 3 ? ["a": 1, "b": 1] : ["a": 1, "b": 2] }
        for cycle in 0..<3 { m.sampled(cycle) }
        m.vaultUp = false
        // The change may have committed without its answer: what the vault holds is not known.
        #expect(m.sampled(3) != nil)
        m.vaultUp = true
        m.now += .seconds(15)
        m.sampled(4)
        #expect(m.writtenCycles == [0, 3], "4 is the same as 3: nothing to send")
        #expect(m.written[1].plan == .all, "the write after the failure is whole: the vault reconciles it")
        #expect(m.trace.contains("disconnect"), "a connection lost under the write is closed")
    }

    @Test func aWriteTheVaultRefusesForgetsWhatItHolds() {
        var m = SimulatedMonitor()
        m.rows = { _ in ["a": 1] }
        m.sampled(0)
        m.rows = { _ in ["a": 2] }
        m.refused = [1]
        m.sampled(1)
        m.sampled(2)
        #expect(m.writtenCycles == [0, 2])
        #expect(m.written[1].plan == .all && m.written[1].gap != nil, "whole, carrying the refused cycle's gap")
        #expect(!m.trace.contains("disconnect"), "a refusal on a healthy connection keeps it")
    }

    @Test func aCycleThatCannotBeEncodedBecomesAGap() throws {
        var m = SimulatedMonitor()
        m.unencodable = [1]
        for cycle in 0...2 { #expect(m.sampled(cycle) == nil) }
        #expect(m.writtenCycles == [0, 2])
        let gap = try #require(m.written[1].gap)
        #expect(gap.start == m.capturedAt[1] && gap.reason.hasPrefix("vault rejected 1 cycle record: could not encode the record"))
        #expect(m.notices.contains(.unencodable(reason: "NaN")))
    }

    @Test func aReloadToAnotherVaultWritesWholeThereAndTriesItAtOnce() {
        var m = SimulatedMonitor()
        m.rows = { _ in ["a": 1] }
        m.sampled(0)
        m.sampled(1)
        #expect(m.writtenCycles == [0])
        m.vaultUp = false
        m.rows = { _ in ["a": 2] }
        for cycle in 2...6 { m.sampled(cycle) }
        #expect(m.vault.schedule.nextAttempt != nil, "backing off from the old vault")
        m.run(m.vault.vaultChanged(at: m.now))
        m.vaultUp = true
        #expect(m.flush() == nil, "the new vault is tried at once, not after the old one's backoff")
        #expect(m.writtenCycles == [0, 2], "2 whole; 3–6 are the same as 2")
        #expect(m.written[1].plan == .all, "nothing is known of what the new vault holds")
        m.rows = { _ in ["a": 3] }
        m.run(m.vault.vaultChanged(at: m.now))
        #expect(m.trace.last == "disconnect", "an open connection to the old vault is closed")
        m.sampled(7)
        #expect(m.written.last?.plan == .all)
    }

    // MARK: The spool

    @Test func cyclesTheVaultDidNotTakeAreSpooledAndRemovedOnceWritten() {
        var m = SimulatedMonitor(spoolMaxBytes: 10_000)
        m.sampled(0)
        #expect(m.files.isEmpty, "a cycle the vault took is never spooled")
        m.vaultUp = false
        m.sampled(1)
        m.sampled(2)
        #expect(m.files == [2: 1, 3: 2], "one file per cycle still buffered")
        m.vaultUp = true
        m.now += .seconds(15)
        m.sampled(3)
        #expect(m.files.isEmpty)
        let order = m.trace.filter { $0.hasPrefix("write") || $0.hasPrefix("unspool") }.suffix(5)
        #expect(Array(order) == ["write 1", "unspool 2", "write 2", "unspool 3", "write 3"],
                "each file goes as soon as the vault has its cycle, before the next is written")
    }

    @Test func afterAKillMinus9TheSpoolIsWrittenFirstWholeAndInOrder() throws {
        var before = SimulatedMonitor(spoolMaxBytes: 10_000)
        before.sampled(0)
        before.vaultUp = false
        for cycle in 1...5 { before.sampled(cycle) }
        #expect(before.files.count == 5)

        // kill -9: nothing but the files survives.
        var after = before.restarted()
        #expect(after.notices.contains { if case .replaying(5, _, _) = $0 { return true }; return false })
        after.sampled(6)
        #expect(after.writtenCycles == [1, 2, 3, 4, 5, 6], "the spooled cycles first, in order")
        #expect(after.written.allSatisfy { $0.plan == .all }, "after a restart nothing is known of the vault: every write is whole")
        #expect(after.files.isEmpty)
        #expect(after.notices.contains(.replayed(count: 5)))
        #expect(after.vault.buffer.nextSequence == 8, "numbering continues after the spool's")
    }

    /// The alert trail rides in the cycle that raised an alert (and the next one that finds
    /// its deliveries finished): a cycle whose rows are all unchanged is still written when it
    /// carries one, and, during an outage, spooled with the rest and replayed after a kill -9
    /// in order, once.
    @Test func cyclesCarryingAlertsAreNeverSkippedAndSurviveAKillMinus9Once() {
        var before = SimulatedMonitor(spoolMaxBytes: 10_000)
        before.rows = { _ in ["lock": 1] }   // a steady cluster: nothing changes
        before.events = [3, 4]               // 3 raises an alert, 4 carries its delivery
        before.sampled(0)
        before.sampled(1)
        #expect(before.writtenCycles == [0], "a steady cycle without events is not written")
        before.vaultUp = false
        for cycle in 2...5 { before.sampled(cycle) }
        let onDisk = Set(before.files.values)
        #expect(onDisk.isSuperset(of: [3, 4]), "the alert's cycle and its delivery's wait for the vault on disk: \(onDisk.sorted())")
        #expect(!onDisk.contains(2), "a steady cycle the vault holds already waits for nothing")

        var after = before.restarted()   // kill -9
        after.vaultUp = true
        after.now += .seconds(15)
        after.sampled(6)
        after.sampled(7)
        #expect(after.writtenCycles.first == 3, "the spool first")
        #expect(after.writtenCycles == after.writtenCycles.sorted(), "in order")
        #expect(after.writtenCycles.filter { $0 == 3 || $0 == 4 } == [3, 4], "the alert and its delivery, once each")
        #expect(after.files.isEmpty)
        let written = after.writtenCycles
        after.sampled(8)
        #expect(after.writtenCycles == written, "a steady cycle after the replay writes nothing again")
    }

    @Test func droppedCyclesLeaveTheSpoolAndTheNewHeadIsRewrittenWithItsGap() throws {
        var m = SimulatedMonitor(maxBufferedCycles: 2, spoolMaxBytes: 10_000)
        m.vaultUp = false
        m.sampled(0)
        m.sampled(1)
        #expect(m.files == [1: 0, 2: 1])
        m.sampled(2)   // drops 0; 1 now carries the gap
        #expect(m.files == [2: 1, 3: 2])
        #expect(m.trace.suffix(3) == ["unspool 1", "spool 2", "spool 3"], "the head's file is rewritten to carry the lost cycle")
        #expect(try #require(m.vault.spool?.stored[2]).lost?.dropped == 1)
    }

    @Test func aFullSpoolStaysContiguousAndIsReportedOnce() {
        var m = SimulatedMonitor(spoolMaxBytes: 250)
        m.vaultUp = false
        for cycle in 0..<4 { m.sampled(cycle) }
        #expect(m.files.keys.sorted() == [1, 2], "two files fit")
        #expect(m.notices.filter { if case .spoolFull = $0 { return true }; return false }.count == 1)
        m.vaultUp = true
        m.now += .seconds(15)
        m.sampled(4)
        #expect(m.files.isEmpty && m.vault.spool?.suspended == nil, "an empty buffer ends the suspension")
        m.vaultUp = false
        m.sampled(5)
        #expect(m.files.keys.sorted() == [6])
    }

    @Test func anUnwritableSpoolIsReportedOnceAndNotRetriedEveryCycle() {
        var m = SimulatedMonitor(spoolMaxBytes: 10_000)
        m.spoolWritable = false
        m.vaultUp = false
        for cycle in 0..<5 { m.sampled(cycle) }
        #expect(m.notices.filter { if case .spoolUnwritable = $0 { return true }; return false }.count == 1)
        #expect(m.vault.buffer.count == 5, "the cycles stay in memory")
    }

    @Test func spoolFileMetadataRoundTrips() throws {
        var lost = LostStretch([PendingCycle<Int, String>(content: .spooled(document: "1"), capturedAt: Date(timeIntervalSince1970: 1_800_000_000),
                                                          gap: nil, lost: nil, sequence: 1)], start: Date(timeIntervalSince1970: 1_800_000_000))
        lost.dropped = 3
        lost.bufferLimit = 3
        let decoded = try JSONDecoder().decode(LostStretch.self, from: JSONEncoder().encode(lost))
        #expect(decoded == lost)
    }
}
