import Foundation
import Testing
@testable import LockvaultCore

@Suite struct DeadlockTrackerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func oneDeadlockSeenByAllThreeSourcesIsOneEvent() throws {
        var tracker = DeadlockTracker()
        #expect(tracker.observe(counts: ["shop": 4], cycles: [], reports: [], at: t0).isEmpty, "the first counts are the baseline")
        let seen = tracker.observe(counts: ["shop": 4], cycles: [(database: "shop", pids: [20, 10])], reports: [], at: t0 + 1)
        #expect(seen.isEmpty, "a cycle in lockvault's graph is not a deadlock until the server says so")
        let report = DeadlockReport(detectedAt: t0 + 1.5, database: "shop", user: "app", victimPid: 20,
                                    participants: [DeadlockParticipant(pid: 10, waitsFor: "ShareLock on transaction 750", blockedBy: 20, query: "UPDATE a"),
                                                   DeadlockParticipant(pid: 20, waitsFor: "ShareLock on transaction 751", blockedBy: 10, query: "UPDATE b")],
                                    context: nil)
        let enriched = tracker.observe(counts: ["shop": 5], cycles: [], reports: [report], at: t0 + 2)
        let event = try #require(enriched.first)
        #expect(enriched.count == 1)
        #expect(event.eventKey.hasPrefix("graph:\(VaultHash.timestamp(t0 + 1))"), "the cycle seen first, confirmed and enriched")
        #expect(event.sources == [.graph, .server_log, .counter])
        #expect(event.victimPid == 20 && event.pids == [10, 20])
        #expect(event.details?.contains("Process 10: UPDATE a") == true)
        #expect(tracker.observe(counts: ["shop": 5], cycles: [], reports: [], at: t0 + 3).isEmpty)
    }

    /// ProcSleep's reordering, or the detector rearranging a soft deadlock: a cycle in the graph
    /// that the server never counts is never recorded, alerted or reported.
    @Test func aCycleTheServerNeverConfirmsIsNeverADeadlock() {
        var tracker = DeadlockTracker(window: 60)
        _ = tracker.observe(counts: ["shop": 4], cycles: [], reports: [], at: t0)
        for t in stride(from: 1.0, through: 300, by: 1) {
            #expect(tracker.observe(counts: ["shop": 4], cycles: [(database: "shop", pids: [20, 30])], reports: [], at: t0 + t).isEmpty)
        }
        // Gone, and unconfirmed: an increment later in another database is not it.
        let other = tracker.observe(counts: ["shop": 4, "crm": 0], cycles: [], reports: [], at: t0 + 301)
        #expect(other.isEmpty)
        // A cycle the server then counts is reported once, with the graph's participants.
        _ = tracker.observe(counts: ["shop": 4], cycles: [(database: "shop", pids: [40, 50])], reports: [], at: t0 + 400)
        let counted = tracker.observe(counts: ["shop": 5], cycles: [], reports: [], at: t0 + 401)
        #expect(counted.count == 1 && counted.first?.sources == [.graph, .counter] && counted.first?.pids == [40, 50])
    }

    @Test func unmatchedCounterIncrementsAreEventsOfTheirOwnAndAStatsResetIsABaseline() {
        var tracker = DeadlockTracker()
        _ = tracker.observe(counts: ["shop": 1, "crm": 7], cycles: [], reports: [], at: t0)
        let counted = tracker.observe(counts: ["shop": 3, "crm": 7], cycles: [], reports: [], at: t0 + 1)
        #expect(counted.map(\.database) == ["shop", "shop"])
        #expect(counted.allSatisfy { $0.sources == [.counter] && $0.participants.isEmpty })
        #expect(Set(counted.map(\.eventKey)).count == 2)
        #expect(tracker.observe(counts: ["shop": 0, "crm": 7], cycles: [], reports: [], at: t0 + 2).isEmpty, "a reset counts nothing")
    }

    @Test func aNewProcessResumesFromTheVaultsCountersAndTimesWhatItMissed() throws {
        var tracker = DeadlockTracker()
        #expect(tracker.wantsRecordedBaseline)
        let recorded = ["shop": RecordedDeadlockCount(deadlocks: 4, seenAt: t0 - 600), "crm": RecordedDeadlockCount(deadlocks: 9, seenAt: t0 - 600)]
        // shop rose by 2 while nobody sampled, crm was reset (a lower count is a new baseline), new_db is new.
        let missed = tracker.observe(counts: ["shop": 6, "crm": 1, "new_db": 3], cycles: [], reports: [], at: t0, recorded: recorded)
        #expect(!tracker.wantsRecordedBaseline)
        #expect(missed.count == 2)
        #expect(missed.allSatisfy { $0.database == "shop" && $0.sources == [.counter] && $0.participants.isEmpty })
        #expect(missed.allSatisfy { $0.occurredAfter == t0 - 600 && $0.detectedAt == t0 })
        let details = try #require(missed.first?.details)
        #expect(details.contains("between \(VaultHash.timestamp(t0 - 600)) and \(VaultHash.timestamp(t0))"), "\(details)")
        // Later cycles count from this process's own reading; a recorded baseline is ignored.
        let later = tracker.observe(counts: ["shop": 7, "crm": 1, "new_db": 3], cycles: [], reports: [], at: t0 + 1,
                                    recorded: ["shop": RecordedDeadlockCount(deadlocks: 0, seenAt: t0 - 900)])
        #expect(later.count == 1 && later[0].occurredAfter == nil && later[0].details == nil)
    }

    @Test func withoutARecordedBaselineTheFirstReadingIsTheBaseline() {
        var tracker = DeadlockTracker()
        #expect(tracker.observe(counts: ["shop": 6], cycles: [], reports: [], at: t0, recorded: nil).isEmpty)
        #expect(tracker.observe(counts: ["shop": 6], cycles: [], reports: [], at: t0 + 1).isEmpty)
    }

    static func participants(_ a: Int32, _ b: Int32, detail: String = "transaction") -> [DeadlockParticipant] {
        [DeadlockParticipant(pid: a, waitsFor: "ShareLock on \(detail)", blockedBy: b, query: "UPDATE a"),
         DeadlockParticipant(pid: b, waitsFor: "ShareLock on \(detail)", blockedBy: a, query: "UPDATE b")]
    }

    static func snapshot(at t: Date, counts: [String: Int64], sessions: [(Int32, String)]) -> LockSnapshot {
        LockSnapshot(capturedAt: t, backends: sessions.map { pid, db in BackendActivity(pid: pid, backendStart: t - 100, database: db) },
                     deadlockCounts: counts)
    }

    /// log_line_prefix without %d: the report is placed by its DETAIL's database OID, and
    /// merged with the counter's event: one deadlock, one event.
    @Test func aReportWithoutADatabaseNameIsPlacedByItsOIDAndMerged() throws {
        var tracker = DeadlockTracker()
        let graph = WaitGraph(Self.snapshot(at: t0, counts: [:], sessions: []))
        _ = tracker.observe(Self.snapshot(at: t0, counts: ["shop": 1, "crm": 1], sessions: []), graph: graph, reports: [])
        let report = DeadlockReport(detectedAt: t0 + 0.5, database: nil, user: nil, victimPid: 20,
                                    participants: Self.participants(10, 20, detail: "relation 16390 of database 16384"), context: nil, databaseOID: 16384)
        let logged = tracker.observe(Self.snapshot(at: t0 + 1, counts: ["shop": 1, "crm": 1], sessions: []), graph: graph, reports: [report],
                                     databaseNames: [16384: "shop", 1: "crm"])
        #expect(logged.map(\.database) == ["shop"])
        let counted = tracker.observe(Self.snapshot(at: t0 + 2, counts: ["shop": 2, "crm": 1], sessions: []), graph: graph, reports: [])
        #expect(counted.map(\.eventKey) == logged.map(\.eventKey), "the counter's increment is the same deadlock")
        #expect(counted.first?.sources == [.server_log, .counter])
    }

    /// No %d and a transaction-id deadlock (no OID in the DETAIL): the participants' sessions,
    /// seen in a snapshot a cycle earlier, say where it happened.
    @Test func aReportWithoutDatabaseOrOIDIsPlacedByItsSessions() throws {
        var tracker = DeadlockTracker()
        let empty = WaitGraph(Self.snapshot(at: t0, counts: [:], sessions: []))
        _ = tracker.observe(Self.snapshot(at: t0, counts: ["shop": 1], sessions: [(10, "shop"), (20, "shop")]), graph: empty, reports: [])
        let report = DeadlockReport(detectedAt: t0 + 0.5, database: nil, user: nil, victimPid: 20, participants: Self.participants(10, 20), context: nil)
        // By now both sessions are gone.
        let logged = tracker.observe(Self.snapshot(at: t0 + 1, counts: ["shop": 2], sessions: []), graph: empty, reports: [report])
        #expect(logged.count == 1)
        #expect(logged.first?.database == "shop")
        #expect(logged.first?.sources == [.server_log, .counter])
    }

    /// Nothing names the database: still one event, merged with whichever counter moved.
    @Test func anUnplacedReportIsStillOneEvent() {
        var tracker = DeadlockTracker()
        _ = tracker.observe(counts: ["shop": 1], cycles: [], reports: [], at: t0)
        let report = DeadlockReport(detectedAt: t0 + 0.5, database: nil, user: nil, victimPid: 20, participants: Self.participants(10, 20), context: nil)
        let logged = tracker.observe(counts: ["shop": 1], cycles: [], reports: [report], at: t0 + 1)
        let counted = tracker.observe(counts: ["shop": 2], cycles: [], reports: [], at: t0 + 2)
        #expect(counted.map(\.eventKey) == logged.map(\.eventKey))
    }
}
