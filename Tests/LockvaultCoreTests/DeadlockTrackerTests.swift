import Foundation
import Testing
@testable import LockvaultCore

@Suite struct DeadlockTrackerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func oneDeadlockSeenByAllThreeSourcesIsOneEvent() throws {
        var tracker = DeadlockTracker()
        #expect(tracker.observe(counts: ["shop": 4], cycles: [], reports: [], at: t0).isEmpty, "the first counts are the baseline")
        let seen = tracker.observe(counts: ["shop": 4], cycles: [(database: "shop", pids: [20, 10])], reports: [], at: t0 + 1)
        #expect(seen.map(\.sources) == [[.graph]])
        let report = DeadlockReport(detectedAt: t0 + 1.5, database: "shop", user: "app", victimPid: 20,
                                    participants: [DeadlockParticipant(pid: 10, waitsFor: "ShareLock on transaction 750", blockedBy: 20, query: "UPDATE a"),
                                                   DeadlockParticipant(pid: 20, waitsFor: "ShareLock on transaction 751", blockedBy: 10, query: "UPDATE b")],
                                    context: nil)
        let enriched = tracker.observe(counts: ["shop": 5], cycles: [], reports: [report], at: t0 + 2)
        let event = try #require(enriched.first)
        #expect(enriched.count == 1)
        #expect(event.eventKey == seen[0].eventKey, "the same event, enriched")
        #expect(event.sources == [.graph, .server_log, .counter])
        #expect(event.victimPid == 20 && event.pids == [10, 20])
        #expect(event.details?.contains("Process 10: UPDATE a") == true)
        #expect(tracker.observe(counts: ["shop": 5], cycles: [], reports: [], at: t0 + 3).isEmpty)
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
}
