import Foundation
import Testing
@testable import LockvaultCore

@Suite struct AlertTrackerTests {
    /// Cycle `t` seconds after Fixture.now; pid 1 (active, ROW EXCLUSIVE: no escalation) blocks pid 2 for `wait` seconds.
    static func cycle(at t: Double, wait: Double?, blockers: Int = 1) -> (LockSnapshot, [BlockerAssessment]) {
        let now = Fixture.now.addingTimeInterval(t)
        guard let wait else {
            let s = LockSnapshot(capturedAt: now, systemIdentifier: "42")
            return (s, [])
        }
        var blocker = Fixture.session(1, state: .active)
        blocker.query = String(repeating: "x", count: 5000)
        var sessions = [blocker]
        var waiters = [Fixture.waits(2, on: [1], since: wait)]
        if blockers > 1 { waiters.append(Fixture.waits(3, on: [1], since: 1)) }
        waiters = waiters.map { w in
            var l = w.1
            l.waitStart = now.addingTimeInterval(-wait)
            return (w.0, l)
        }
        sessions[0].transactionStart = now.addingTimeInterval(-wait - 5)
        var s = Fixture.snapshot(sessions: sessions, waiters: waiters, locks: [Fixture.holds(1, .rowExclusive)])
        s.capturedAt = now
        s.systemIdentifier = "42"
        return (s, BlockerAssessment.assess(s, policy: SeverityPolicy()))
    }

    func run(_ tracker: inout AlertTracker, at t: Double, wait: Double?) -> [Alert] {
        let (s, a) = Self.cycle(at: t, wait: wait)
        return tracker.observe(s, assessments: a, deadlocks: [])
    }

    @Test func oneAlertPerStateChangeNeverOnePerCycle() throws {
        var policy = AlertPolicy()
        policy.minSeverity = .high
        policy.clearAfterSeconds = 3
        var tracker = AlertTracker(policy: policy, cluster: "prod")
        #expect(run(&tracker, at: 0, wait: 5).isEmpty, "LOW/MEDIUM: below the alert severity")
        let raised = run(&tracker, at: 1, wait: 100)
        #expect(raised.map(\.kind) == [.raised])
        #expect(raised.first?.severity == .high)
        for t in 2...5 { #expect(run(&tracker, at: Double(t), wait: 100 + Double(t)).isEmpty, "steady: nothing new") }
        let escalated = run(&tracker, at: 6, wait: 400)
        #expect(escalated.map(\.kind) == [.escalated])
        #expect(escalated.first?.previousSeverity == .high && escalated.first?.severity == .critical)
        #expect(escalated.first?.alertID == raised.first?.alertID, "one incident, one id")
        #expect(run(&tracker, at: 7, wait: nil).isEmpty, "gone for 0 s: not yet cleared (hysteresis)")
        #expect(run(&tracker, at: 8, wait: 401).isEmpty, "back before clear_after_seconds: no new raise")
        #expect(run(&tracker, at: 9, wait: nil).isEmpty)
        #expect(run(&tracker, at: 11, wait: nil).isEmpty)
        let cleared = run(&tracker, at: 12, wait: nil)
        #expect(cleared.map(\.kind) == [.cleared])
        #expect(cleared.first?.alertID == raised.first?.alertID)
        #expect(run(&tracker, at: 13, wait: nil).isEmpty)
        #expect(tracker.open.isEmpty, "no incident is left open")
    }

    @Test func aFlappingBlockerIsNotAnnouncedAgain() {
        var policy = AlertPolicy()
        policy.clearAfterSeconds = 0
        policy.flapWindowSeconds = 60
        var tracker = AlertTracker(policy: policy, cluster: "")
        #expect(run(&tracker, at: 0, wait: 400).map(\.kind) == [.raised])
        #expect(run(&tracker, at: 1, wait: nil).map(\.kind) == [.cleared])
        #expect(run(&tracker, at: 2, wait: 400).isEmpty, "re-raised within the flap window")
        #expect(run(&tracker, at: 3, wait: nil).isEmpty, "and its clear is withheld too")
        #expect(tracker.suppressedCount == 2)
        #expect(run(&tracker, at: 100, wait: 400).map(\.kind) == [.raised], "after the window it is news again")
    }

    @Test func aRecycledPidIsANewIncident() {
        var policy = AlertPolicy()
        policy.clearAfterSeconds = 0
        var tracker = AlertTracker(policy: policy, cluster: "")
        let (s, a) = Self.cycle(at: 0, wait: 400)
        let first = tracker.observe(s, assessments: a, deadlocks: [])
        var (s2, _) = Self.cycle(at: 1, wait: 400)
        s2.backends[0].backendStart = Fixture.now   // same pid, new session
        let second = tracker.observe(s2, assessments: BlockerAssessment.assess(s2, policy: SeverityPolicy()), deadlocks: [])
        #expect(second.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.cleared, .raised])
        #expect(Set(second.map(\.alertID)).count == 2)
        #expect(second.contains { $0.kind == .cleared && $0.alertID == first.first?.alertID })
    }

    @Test func deadlocksAlertOncePerEvent() {
        var tracker = AlertTracker(cluster: "prod")
        let (s, _) = Self.cycle(at: 0, wait: nil)
        let d = DeadlockEvent(eventKey: "shop:1", database: "shop", detectedAt: s.capturedAt, sources: [.server_log, .counter],
                              participants: [20, 10].map { DeadlockParticipant(pid: $0, waitsFor: "ShareLock", blockedBy: nil, query: nil) },
                              victimPid: 20, details: "Process 10 waits for ShareLock")
        let first = tracker.observe(s, assessments: [], deadlocks: [d])
        #expect(first.map(\.kind) == [.deadlock])
        #expect(first.first?.deadlock?.pids == [10, 20])
        #expect(first.first?.deadlock?.victimPid == 20)
        #expect(first.first?.summary.contains("victim pid 20") == true)
        #expect(tracker.observe(s, assessments: [], deadlocks: [d]).isEmpty, "the same event enriched later is not a new alert")
    }

    @Test func theJSONCarriesWhatAPersonNeedsOnOneLine() throws {
        var tracker = AlertTracker(cluster: "prod")
        let (s, a) = Self.cycle(at: 0, wait: 400, blockers: 2)
        let alert = try #require(tracker.observe(s, assessments: a, deadlocks: []).first)
        let json = alert.json()
        #expect(!json.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "raised")
        #expect(object["severity"] as? String == "CRITICAL")
        #expect(object["cluster"] as? String == "prod")
        #expect(object["blocked_count"] as? Int == 2)
        #expect((object["alert_id"] as? String)?.count == 64)
        let blocker = try #require(object["blocker"] as? [String: Any])
        #expect(blocker["pid"] as? Int == 1)
        #expect(blocker["state"] as? String == "active")
        #expect((blocker["query"] as? String)?.count == 1001, "1000 characters and an ellipsis")
        #expect((object["blocked_sessions"] as? [Any])?.count == 2)
        #expect((object["recommended_action"] as? String)?.contains("pg_cancel_backend(1)") == true)
        #expect(object["relation"] as? String == "public.orders")
    }
}
