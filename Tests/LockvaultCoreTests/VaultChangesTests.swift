import Foundation
import Testing
@testable import LockvaultCore

/// What the daemon sends the vault: only what changed since its last successful write, and
/// everything whenever that write's outcome is not known for certain.
@Suite struct VaultChangesTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    typealias Changes = VaultChanges<String>

    func cycle(_ rows: [String: UInt8], at seconds: Double, summary: UInt8 = 0, events: Bool = false) -> VaultRowDigests<String> {
        VaultRowDigests(rows: rows.mapValues { [$0] }, summary: [summary], capturedAt: t0 + seconds, hasEvents: events)
    }

    /// Plans `c`, and when it is to be sent, reports it written with the summary at `c`'s time.
    @discardableResult
    func write(_ changes: inout Changes, _ c: VaultRowDigests<String>) -> Changes.Plan {
        let plan = changes.plan(c)
        if plan == .skip { changes.unchanged(c) } else { changes.written(c, summaryAt: c.capturedAt) }
        return plan
    }

    @Test func theFirstWriteIsWholeAndASteadyCycleSendsNothingUntilTheHeartbeat() {
        var changes = Changes(heartbeatSeconds: 60)
        let locks: [String: UInt8] = Dictionary(uniqueKeysWithValues: (0..<3000).map { ("lock\($0)", 1) })
        #expect(write(&changes, cycle(locks, at: 0)) == .all)
        for s in 1..<60 { #expect(write(&changes, cycle(locks, at: Double(s))) == .skip, "second \(s)") }
        #expect(write(&changes, cycle(locks, at: 60)) == .changes(send: [], end: []), "the heartbeat: a call with no rows")
        #expect(write(&changes, cycle(locks, at: 61)) == .skip)
    }

    @Test func onlyNewChangedAndEndedRowsAreSent() {
        var changes = Changes(heartbeatSeconds: 60)
        write(&changes, cycle(["a": 1, "b": 1, "c": 1], at: 0))
        #expect(write(&changes, cycle(["a": 1, "b": 2, "d": 1], at: 1)) == .changes(send: ["b", "d"], end: ["c"]))
        #expect(write(&changes, cycle(["a": 1, "b": 2, "d": 1], at: 2)) == .skip)
    }

    @Test func aChangedSummaryOrAnEventIsSentEvenWhenNoRowChanged() {
        var changes = Changes(heartbeatSeconds: 60)
        write(&changes, cycle(["a": 1], at: 0))
        #expect(write(&changes, cycle(["a": 1], at: 1, summary: 7)) == .changes(send: [], end: []))
        #expect(write(&changes, cycle(["a": 1], at: 2, summary: 7, events: true)) == .changes(send: [], end: []))
        #expect(write(&changes, cycle(["a": 1], at: 3, summary: 7)) == .skip)
    }

    @Test func cyclesThatWereNeverWrittenDontMove() {
        // The vault was down for two cycles (written never called): the third is compared with
        // what the vault holds, the first cycle's rows, not with the cycles in between.
        var changes = Changes(heartbeatSeconds: 60)
        write(&changes, cycle(["a": 1, "b": 1], at: 0))
        _ = changes.plan(cycle(["a": 1, "c": 1], at: 1))
        _ = changes.plan(cycle(["a": 2], at: 2))
        #expect(changes.plan(cycle(["a": 1, "b": 1, "e": 1], at: 3)) == .changes(send: ["e"], end: []))
    }

    @Test func afterAFailedWriteOrARestartTheNextWriteIsWhole() {
        var changes = Changes(heartbeatSeconds: 60)
        write(&changes, cycle(["a": 1], at: 0))
        // The write of this cycle failed, maybe after its commit: the vault holds either state.
        #expect(changes.plan(cycle(["b": 1], at: 1)) == .changes(send: ["b"], end: ["a"]))
        changes.forget()
        #expect(write(&changes, cycle(["b": 1], at: 2)) == .all, "whole: the vault ends whatever it holds that isn't sent")
        #expect(write(&changes, cycle(["b": 1], at: 3)) == .skip)
        // A new process knows nothing of the vault.
        #expect(Changes(heartbeatSeconds: 60).plan(cycle(["b": 1], at: 4)) == .all)
    }

    @Test func aSummaryTimeTheVaultDidNotReturnMakesTheNextCycleCall() {
        var changes = Changes(heartbeatSeconds: 60)
        let c = cycle(["a": 1], at: 0)
        changes.written(c, summaryAt: nil)
        #expect(changes.plan(cycle(["a": 1], at: 1)) == .changes(send: [], end: []))
        // The vault's summary row is older than this cycle (it kept a row from 50 s before):
        // the heartbeat falls due 10 s later, not 60.
        changes.written(cycle(["a": 1], at: 1), summaryAt: t0 - 49)
        #expect(changes.plan(cycle(["a": 1], at: 5)) == .skip)
        #expect(changes.plan(cycle(["a": 1], at: 11)) == .changes(send: [], end: []))
    }

    @Test func aClockThatWentBackMakesTheSummaryDue() {
        var changes = Changes(heartbeatSeconds: 60)
        write(&changes, cycle(["a": 1], at: 100))
        #expect(changes.plan(cycle(["a": 1], at: 50)) == .changes(send: [], end: []))
    }

    /// A bulk of the same generation is taken as unchanged without comparing it; a new
    /// generation is compared row by row, so a bulk rebuilt with the same rows sends nothing.
    @Test func aBulkOfTheSameGenerationIsNotComparedAndANewOneIs() {
        var changes = Changes(heartbeatSeconds: 60)
        func bulky(_ rows: [String: UInt8], bulk: [String: UInt8], generation: UInt64, at seconds: Double) -> VaultRowDigests<String> {
            var c = cycle(rows, at: seconds)
            c.bulk = .init(rows: bulk.mapValues { [$0] }, generation: generation)
            return c
        }
        #expect(write(&changes, bulky(["b1": 1], bulk: ["l1": 1, "l2": 1], generation: 1, at: 0)) == .all)
        #expect(write(&changes, bulky(["b1": 1], bulk: ["l1": 1, "l2": 1], generation: 1, at: 1)) == .skip)
        #expect(write(&changes, bulky(["b1": 2], bulk: ["l1": 1, "l2": 1], generation: 1, at: 2)) == .changes(send: ["b1"], end: []),
                "the other rows are still compared")
        #expect(write(&changes, bulky(["b1": 2], bulk: ["l1": 1, "l2": 1], generation: 2, at: 3)) == .skip, "the same rows, rebuilt")
        #expect(write(&changes, bulky(["b1": 2], bulk: ["l1": 2, "l3": 1], generation: 3, at: 4)) == .changes(send: ["l1", "l3"], end: ["l2"]))
        // A state without a bulk (a whole row set) after one with it: compared in full.
        #expect(write(&changes, cycle(["b1": 2, "l1": 2, "l3": 1], at: 5)) == .skip)
        #expect(write(&changes, cycle(["b1": 2], at: 6)) == .changes(send: [], end: ["l1", "l3"]))
    }

    /// A rebuilt bulk that sent nothing is what the vault holds: its generation is not compared
    /// row by row again (rows that differ, against the builder's promise, show it is not looked at).
    @Test func aRebuiltBulkThatChangedNothingIsNotComparedAgain() {
        var changes = Changes(heartbeatSeconds: 60)
        func bulky(_ bulk: [String: UInt8], generation: UInt64, at seconds: Double) -> VaultRowDigests<String> {
            var c = cycle([:], at: seconds)
            c.bulk = .init(rows: bulk.mapValues { [$0] }, generation: generation)
            return c
        }
        #expect(write(&changes, bulky(["l1": 1], generation: 1, at: 0)) == .all)
        #expect(write(&changes, bulky(["l1": 1], generation: 2, at: 1)) == .skip, "compared: the same rows")
        #expect(write(&changes, bulky(["l1": 9], generation: 2, at: 2)) == .skip, "generation 2 is known now: not compared")
        #expect(write(&changes, bulky(["l1": 9], generation: 3, at: 3)) == .changes(send: ["l1"], end: []), "a new one is")
    }
}
