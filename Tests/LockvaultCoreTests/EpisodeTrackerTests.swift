import Foundation
import Testing
@testable import LockvaultCore

/// Scripted cycles for the episode tracker: sessions by pid, locks on relations 100 and 200,
/// times in seconds after `t0`.
enum Scene {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func at(_ s: Double) -> Date { t0.addingTimeInterval(s) }

    static func session(_ pid: Int32, app: String = "app", state: BackendState = .active, xact: Double? = -100, waitsOn: [Int32] = [],
                        query: String = "SELECT 1", changed: Double = -100) -> BackendActivity {
        BackendActivity(pid: pid, backendStart: at(-3600 - Double(pid)), database: "shop", user: "u\(pid)", applicationName: app, state: state,
                        transactionStart: xact.map(at), stateChange: at(changed), waitEventType: waitsOn.isEmpty ? nil : "Lock",
                        waitEvent: waitsOn.isEmpty ? nil : "relation", query: query, blockedBy: waitsOn)
    }

    static func holds(_ pid: Int32?, _ mode: LockMode, on rel: UInt32 = 100, vxid: String? = nil) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: true, databaseOID: 5, databaseName: "shop", relationOID: rel,
                   relationName: rel == 100 ? "public.t" : "public.u", virtualTransaction: vxid)
    }

    static func wants(_ pid: Int32, _ mode: LockMode, on rel: UInt32 = 100, since: Double) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: false, waitStart: at(since), databaseOID: 5, databaseName: "shop",
                   relationOID: rel, relationName: rel == 100 ? "public.t" : "public.u")
    }

    /// A snapshot at `t`; `watched` are the followed sessions as they are now (default: the backends).
    static func snapshot(_ t: Double, _ backends: [BackendActivity], _ locks: [LockRecord], watched: [BackendActivity]? = nil,
                         prepared: [PreparedTransaction] = [], deadlocks: [String: Int64] = ["shop": 0]) -> LockSnapshot {
        var s = LockSnapshot(capturedAt: at(t), systemIdentifier: "42", backends: backends, locks: locks, preparedTransactions: prepared,
                             deadlockCounts: deadlocks)
        s.watchedSessions = Dictionary((watched ?? backends).map {
            ($0.pid, WatchedSession(pid: $0.pid, backendStart: $0.backendStart, transactionStart: $0.transactionStart, state: $0.state,
                                    stateChange: $0.stateChange))
        }, uniquingKeysWith: { a, _ in a })
        return s
    }

    static func cycle(_ s: LockSnapshot, decisions: [EpisodeDecision] = [], deadlocks: [DeadlockEvent] = [], gap: ObservationGap? = nil) -> EpisodeCycle {
        EpisodeCycle(snapshot: s, assessments: BlockerAssessment.assess(s, policy: SeverityPolicy()), decisions: decisions, deadlocks: deadlocks, gap: gap)
    }

    /// The DDL pile-up at `t`: H (1) reads in an open transaction, M's ALTER TABLE (2) queues
    /// behind it since 1, R1 (3) and R2 (4) queue behind M since 2 and 3.
    static func pileUp(_ t: Double, hState: BackendState = .idleInTransaction) -> LockSnapshot {
        snapshot(t, [session(1, app: "report", state: hState, query: "SELECT * FROM t"),
                     session(2, app: "migrate", waitsOn: [1], query: "ALTER TABLE t ADD c int"),
                     session(3, app: "web", waitsOn: [2]), session(4, app: "web", waitsOn: [2])],
                 [holds(1, .accessShare), wants(2, .accessExclusive, since: 1), wants(3, .accessShare, since: 2), wants(4, .accessShare, since: 3)])
    }

    static func quiet(_ t: Double, _ sessions: [BackendActivity], deadlocks: [String: Int64] = ["shop": 0]) -> LockSnapshot {
        snapshot(t, [], [], watched: sessions, deadlocks: deadlocks)
    }
}

extension [EpisodeEvent] {
    var started: [Episode] { compactMap { if case .started(let e) = $0 { e } else { nil } } }
    var ended: [Episode] { compactMap { if case .ended(let e) = $0 { e } else { nil } } }
    var joined: [EpisodeWaiter] { compactMap { if case .joined(_, _, let w) = $0 { w } else { nil } } }
}

@Suite struct EpisodeTrackerTests {
    typealias S = Scene

    @Test func theDDLPileUpIsOneEpisodeRootedAtTheReaderEndedByItsCommit() throws {
        var tracker = EpisodeTracker()
        let first = tracker.observe(S.cycle(S.pileUp(4)))
        let started = try #require(first.started.first)
        #expect(first.started.count == 1)
        #expect(started.root.pid == 1 && started.root.application == "report" && started.root.query == "SELECT * FROM t")
        #expect(started.startedAt == S.at(1), "it began with the first wait behind the root")
        #expect(started.waiters.map(\.pid) == [2, 3, 4])
        #expect(started.waiters[0].blockedBy == [EpisodeEdge(pid: 1, kind: .hard)])
        #expect(started.waiters[1].blockedBy == [EpisodeEdge(pid: 2, kind: .soft)], "R1 is queued behind M's request: a soft edge")
        #expect(started.deepestChain == 2)
        #expect(started.queuedRequest)
        #expect(started.lockTargets == ["relation public.t"])
        for t in 5...10 { #expect(tracker.observe(S.cycle(S.pileUp(Double(t)))).isEmpty, "one episode, not one per cycle") }

        // H commits at 10.5: everyone gets the lock.
        let h = S.session(1, app: "report", state: .idle, xact: nil, changed: 10.5)
        let end = tracker.observe(S.cycle(S.quiet(11, [h])))
        let ended = try #require(end.ended.first)
        #expect(ended.id == started.id)
        #expect(ended.endedBy == .rootFinished)
        #expect(ended.endedAt == S.at(10.5), "the root's commit, from its state_change")
        #expect(ended.durationSeconds == 9.5)
        #expect(abs(ended.waitSecondsTotal - (9.5 + 8.5 + 7.5)) < 1e-9)
        #expect(ended.longestWaitSeconds == 9.5)
        #expect(ended.peakWaiting == 3)
        #expect(ended.waiters.allSatisfy { $0.lastWaitAt == S.at(10.5) })
        #expect(tracker.open.isEmpty)
    }

    @Test func aLateWaiterJoinsAndOneThatLeavesWaitedUntilLastSeen() throws {
        var tracker = EpisodeTracker()
        let h = S.session(1, state: .idleInTransaction)
        func scene(_ t: Double, _ waiters: [(Int32, Double)]) -> LockSnapshot {
            S.snapshot(t, [h] + waiters.map { S.session($0.0, waitsOn: [1]) }, [S.holds(1, .accessExclusive)] + waiters.map { S.wants($0.0, .accessShare, since: $0.1) })
        }
        _ = tracker.observe(S.cycle(scene(2, [(2, 1)])))
        let join = tracker.observe(S.cycle(scene(3, [(2, 1), (3, 2.5)])))
        #expect(join.joined.map(\.pid) == [3])
        #expect(tracker.observe(S.cycle(scene(4, [(3, 2.5)]))).isEmpty, "2 left; the episode goes on")
        let e = try #require(tracker.open.first)
        #expect(e.waiters[0].waitedSeconds == 2, "2 waited from 1 until it was last seen, at 3")
        #expect(!e.waiters[0].isWaiting)
        // 2 waits again (a new statement): a second wait, counted apart.
        _ = tracker.observe(S.cycle(scene(5, [(2, 4.5), (3, 2.5)])))
        let ended = try #require(tracker.observe(S.cycle(S.quiet(6, [S.session(1, state: .idle, xact: nil, changed: 5.5)]))).ended.first)
        #expect(abs((ended.waiters.first { $0.pid == 2 }?.waitedSeconds ?? 0) - 3) < 1e-6, "two waits: 2 s and 1 s")
        #expect(ended.waiters.first { $0.pid == 2 }?.longestWaitSeconds == 2)
        #expect(ended.peakWaiting == 2)
    }

    @Test func aWaiterBehindTwoRootsIsAWaiterOfBoth() throws {
        var tracker = EpisodeTracker()
        let a = S.session(1, state: .idleInTransaction), b = S.session(2, state: .idleInTransaction)
        let both = S.snapshot(5, [a, b, S.session(3, waitsOn: [1, 2])],
                              [S.holds(1, .rowExclusive), S.holds(2, .rowExclusive), S.wants(3, .share, since: 1)])
        let started = tracker.observe(S.cycle(both)).started
        #expect(started.map(\.root.pid) == [1, 2])
        #expect(started.allSatisfy { $0.waiters.map(\.pid) == [3] })
        #expect(Set(started.map(\.id)).count == 2)
        // A commits; 3 still waits for B.
        let onlyB = S.snapshot(6, [S.session(1, state: .idle, xact: nil, changed: 5.8), b, S.session(3, waitsOn: [2])],
                               [S.holds(2, .rowExclusive), S.wants(3, .share, since: 1)])
        let afterA = tracker.observe(S.cycle(onlyB))
        #expect(afterA.ended.map(\.root.pid) == [1])
        #expect(afterA.ended.first?.endedBy == .rootFinished)
        #expect(tracker.open.map(\.root.pid) == [2])
        let end = tracker.observe(S.cycle(S.quiet(7, [S.session(2, state: .idle, xact: nil, changed: 6.5)]))).ended
        #expect(end.first?.waitSecondsTotal == 5.5, "3 waited from 1 to B's commit at 6.5")
    }

    @Test func aRootThatStartsWaitingKeepsItsEpisodeAndTheNewRootGetsOne() throws {
        var tracker = EpisodeTracker()
        let r = S.session(1, app: "batch", state: .active, query: "UPDATE t")
        let w = S.session(2, waitsOn: [1])
        _ = tracker.observe(S.cycle(S.snapshot(2, [r, w], [S.holds(1, .rowExclusive), S.wants(2, .share, since: 0)])))
        // R now waits for X (3), which holds u.
        let rWaiting = S.session(1, app: "batch", waitsOn: [3], query: "UPDATE u")
        let x = S.session(3, app: "idle-job", state: .idleInTransaction)
        let chained = S.snapshot(5, [rWaiting, w, x], [S.holds(1, .rowExclusive), S.wants(2, .share, since: 0), S.holds(3, .rowExclusive, on: 200),
                                                       S.wants(1, .share, on: 200, since: 4)])
        let rerooted = tracker.observe(S.cycle(chained))
        let ex = try #require(rerooted.started.first)
        #expect(rerooted.started.count == 1 && rerooted.ended.isEmpty)
        #expect(ex.root.pid == 3)
        #expect(ex.waiters.map(\.pid) == [1, 2])
        #expect(ex.startedAt == S.at(4), "behind X only since R began to wait for it")
        #expect(ex.waiters.allSatisfy { $0.firstWaitAt == S.at(4) }, "2 was behind X once R waited for X")
        #expect(tracker.open.compactMap(\.root.pid).sorted() == [1, 3], "R's episode goes on: 2 still waits behind R")
        // X commits at 7.5; R gets u and goes on (2 still waits for R).
        let xDone = S.session(3, app: "idle-job", state: .idle, xact: nil, changed: 7.5)
        let afterX = tracker.observe(S.cycle(S.snapshot(8, [r, w], [S.holds(1, .rowExclusive), S.wants(2, .share, since: 0)], watched: [r, xDone])))
        #expect(afterX.ended.map(\.root.pid) == [3])
        #expect(afterX.ended.first?.waitSecondsTotal == 3.5 + 3.5)
        let rDone = S.session(1, state: .idle, xact: nil, changed: 9.5)
        let end = try #require(tracker.observe(S.cycle(S.quiet(10, [rDone]))).ended.first)
        #expect(end.root.pid == 1 && end.endedBy == .rootFinished)
        #expect(end.waiters.map(\.pid) == [2])
        #expect(end.waitSecondsTotal == 9.5, "2 counts from its own wait in R's episode")
    }

    /// A (1) waits for B (2); B then waits for A: a cycle with no root. The server's detector
    /// cancels B; the verdict waits for the server to confirm the deadlock.
    @Test func aDeadlockCycleStaysInItsEpisodeAndEndsByDeadlockOnceTheServerConfirms() throws {
        var tracker = EpisodeTracker()
        let aWaits = S.session(1, waitsOn: [2], query: "UPDATE t SET v = 1 WHERE id = 2")
        let b = S.session(2, state: .active, query: "UPDATE t SET v = 2 WHERE id = 2")
        let started = tracker.observe(S.cycle(S.snapshot(2, [aWaits, b], [S.holds(2, .rowExclusive), S.wants(1, .share, since: 1)]))).started
        #expect(started.map(\.root.pid) == [2])
        let bWaits = S.session(2, waitsOn: [1], query: "UPDATE t SET v = 2 WHERE id = 1")
        let cycle = S.snapshot(3, [aWaits, bWaits], [S.holds(2, .rowExclusive), S.wants(1, .share, since: 1), S.holds(1, .rowExclusive, on: 200),
                                                     S.wants(2, .share, on: 200, since: 2.5)])
        #expect(tracker.observe(S.cycle(cycle)).isEmpty, "the cycle stays in B's episode: no new one")
        // B was the victim: its transaction aborted, A got its lock.
        let bAborted = S.session(2, state: .idleInTransactionAborted, changed: 3.5)
        #expect(tracker.observe(S.cycle(S.quiet(4, [bAborted]))).isEmpty, "a deadlock is likely: the verdict waits for the server")
        #expect(tracker.open.isEmpty)
        #expect(tracker.known.count == 1, "an alert can still find it")
        let confirmed = DeadlockEvent(eventKey: "graph:x", database: "shop", detectedAt: S.at(3), sources: [.graph, .counter],
                                      participants: [DeadlockParticipant(pid: 1, waitsFor: "", blockedBy: nil, query: nil),
                                                     DeadlockParticipant(pid: 2, waitsFor: "", blockedBy: nil, query: nil)])
        let end = try #require(tracker.observe(S.cycle(S.quiet(5, [bAborted], deadlocks: ["shop": 1]), deadlocks: [confirmed])).ended.first)
        #expect(end.endedBy == .deadlock)
        #expect(end.endedAt == S.at(3.5))
    }

    @Test func aCycleSeenWholeIsRootedAtTheMemberThatWaitedLast() throws {
        var tracker = EpisodeTracker()
        let cycle = S.snapshot(3, [S.session(1, waitsOn: [2]), S.session(2, waitsOn: [1])],
                               [S.holds(2, .rowExclusive), S.wants(1, .share, since: 1), S.holds(1, .rowExclusive, on: 200), S.wants(2, .share, on: 200, since: 2.5)])
        let started = tracker.observe(S.cycle(cycle)).started
        #expect(started.map(\.root.pid) == [2])
        #expect(started.first?.waiters.map(\.pid) == [1])
        // Nothing confirms it: after the grace, the root's fate decides (its transaction aborted: finished).
        let quiet = S.quiet(4, [S.session(2, state: .idleInTransactionAborted, changed: 3.5)])
        #expect(tracker.observe(S.cycle(quiet)).isEmpty)
        #expect(tracker.observe(S.cycle(S.quiet(6, [S.session(2, state: .idleInTransactionAborted, changed: 3.5)]))).isEmpty)
        let end = tracker.observe(S.cycle(S.quiet(9.1, [S.session(2, state: .idleInTransactionAborted, changed: 3.5)]))).ended
        #expect(end.first?.endedBy == .rootFinished)
    }

    @Test func aGapInTheMiddleKeepsTheEpisodeAndItsWaitersTime() throws {
        var tracker = EpisodeTracker()
        let started = try #require(tracker.observe(S.cycle(S.pileUp(4))).started.first)
        // The target was lost from 5 to 20; the same waits are still there after it.
        let gap = ObservationGap(start: S.at(4), end: S.at(20), reason: "target unavailable")
        let after = tracker.observe(S.cycle(S.pileUp(20), gap: gap))
        #expect(after.isEmpty, "the same episode: nothing starts, nothing ends")
        #expect(tracker.open.first?.id == started.id)
        let h = S.session(1, app: "report", state: .idle, xact: nil, changed: 20.5)
        let ended = try #require(tracker.observe(S.cycle(S.quiet(21, [h]))).ended.first)
        #expect(ended.waiters.first { $0.pid == 2 }?.waitedSeconds == 19.5, "its waitstart proves it waited through the gap")
    }

    @Test func anEpisodeThatEndedInAGapEndsUnobservedAtTheLastMomentSeen() throws {
        var tracker = EpisodeTracker()
        _ = tracker.observe(S.cycle(S.pileUp(4)))
        _ = tracker.observe(S.cycle(S.pileUp(5)))
        let gap = ObservationGap(start: S.at(5), end: S.at(30), reason: "target unavailable")
        let h = S.session(1, app: "report", state: .idle, xact: nil, changed: 12)
        let ended = try #require(tracker.observe(S.cycle(S.quiet(30, [h]), gap: gap)).ended.first)
        #expect(ended.endedBy == .unobserved)
        #expect(ended.endedAt == S.at(5))
        #expect(ended.waitSecondsTotal == 4 + 3 + 2)
    }

    @Test func aRestartedProcessContinuesTheEpisodeTheVaultHoldsOpenWithItsID() throws {
        var before = EpisodeTracker()
        let original = try #require(before.observe(S.cycle(S.pileUp(4))).started.first)
        // A new process with nothing adopted computes the same id from the same facts.
        var fresh = EpisodeTracker()
        #expect(fresh.observe(S.cycle(S.pileUp(9))).started.first?.id == original.id)

        // After a restart M gave up (the first waiter): its start is no longer visible, yet the
        // vault's open episode goes on under its id.
        let stale = RecordedEpisode(id: "00000000deadbeef", startedAt: S.at(-50),
                                    root: EpisodeRoot(participant: .session(9), pid: 9, backendStart: S.at(-4000), transactionStart: S.at(-60)),
                                    lastSeenAt: S.at(6))
        var restarted = EpisodeTracker()
        #expect(restarted.wantsRecorded)
        restarted.adopt([RecordedEpisode(id: original.id, startedAt: original.startedAt, root: original.root, lastSeenAt: S.at(6)), stale])
        #expect(restarted.watchedPids == [1, 9])
        let h = S.session(1, app: "report", state: .idleInTransaction, query: "SELECT * FROM t")
        let withoutM = S.snapshot(10, [h, S.session(3, waitsOn: [1]), S.session(4, waitsOn: [1])],
                                  [S.holds(1, .accessShare), S.wants(3, .accessShare, since: 2), S.wants(4, .accessShare, since: 3)])
        let events = restarted.observe(S.cycle(withoutM))
        let resumed = try #require(events.started.first)
        #expect(resumed.id == original.id && resumed.resumed)
        #expect(resumed.startedAt == S.at(1))
        let gone = try #require(events.ended.first)
        #expect(gone.id == stale.id && gone.endedBy == .unobserved && gone.endedAt == S.at(6), "its root blocks no more: it ended unobserved")
    }

    @Test func theResolversSignalNamesTheEnd() throws {
        func run(_ decision: EpisodeDecision, root: BackendActivity?) throws -> Episode {
            var tracker = EpisodeTracker()
            _ = tracker.observe(S.cycle(S.pileUp(4)))
            _ = tracker.observe(S.cycle(S.pileUp(5), decisions: [decision]))
            return try #require(tracker.observe(S.cycle(S.quiet(6, root.map { [$0] } ?? []))).ended.first)
        }
        let terminated = try run(EpisodeDecision(participant: .session(1), action: "terminated", executed: .terminate, outcome: "done"), root: nil)
        #expect(terminated.endedBy == .rootTerminated)
        #expect(terminated.decisions.map(\.action) == ["terminated"])
        let h = S.session(1, app: "report", state: .idleInTransactionAborted)
        #expect(try run(EpisodeDecision(participant: .session(1), action: "cancelled", executed: .cancel, outcome: "done"), root: h).endedBy == .rootCancelled)
        let stillHolding = S.session(1, app: "report", state: .idleInTransaction)
        #expect(try run(EpisodeDecision(participant: .session(2), action: "cancelled", executed: .cancelQueued, outcome: "done"), root: stillHolding).endedBy
                == .queueCancelled)
        // A dry run is a decision, not a signal.
        let dry = try run(EpisodeDecision(participant: .session(1), action: "would_terminate", executed: nil, outcome: nil), root: nil)
        #expect(dry.endedBy == .rootDisconnected)
    }

    @Test func theRootsFateNamesTheEnd() throws {
        func end(_ root: BackendActivity?) throws -> Episode {
            var tracker = EpisodeTracker()
            _ = tracker.observe(S.cycle(S.pileUp(4)))
            return try #require(tracker.observe(S.cycle(S.quiet(5, root.map { [$0] } ?? []))).ended.first)
        }
        #expect(try end(nil).endedBy == .rootDisconnected)
        #expect(try end(S.session(1, app: "report", state: .idleInTransaction)).endedBy == .waitersGaveUp, "same transaction: it still holds")
        #expect(try end(S.session(1, app: "report", state: .active, xact: 4.5, changed: 4.5)).endedBy == .rootFinished, "a new transaction")
        var other = S.session(1)
        other.backendStart = S.at(4.8)
        #expect(try end(other).endedBy == .rootDisconnected, "its pid is another session now")
    }

    @Test func aPreparedTransactionRootFinishesWhenCommittedElseItsWaitersGaveUp() throws {
        let prepared = PreparedTransaction(gid: "tx1", transactionID: "900", owner: "app", database: "shop", prepared: S.at(-30))
        func scene(_ t: Double) -> LockSnapshot {
            S.snapshot(t, [S.session(2, waitsOn: [0])],
                       [LockRecord(pid: nil, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "900", virtualTransaction: "-1/900"),
                        S.holds(nil, .rowExclusive, vxid: "-1/900"), S.wants(2, .accessExclusive, since: 1)], prepared: [prepared])
        }
        var tracker = EpisodeTracker()
        let started = try #require(tracker.observe(S.cycle(scene(3))).started.first)
        #expect(started.root.gid == "tx1" && started.root.pid == nil && started.root.state == "prepared")
        #expect(started.root.transactionStart == S.at(-30))
        var gaveUp = tracker
        #expect(gaveUp.observe(S.cycle(S.snapshot(4, [], [], prepared: [prepared]))).ended.first?.endedBy == .waitersGaveUp)
        #expect(tracker.observe(S.cycle(S.snapshot(4, [], []))).ended.first?.endedBy == .rootFinished)
    }

    @Test func shortWaitsMakeNoEpisode() {
        var tracker = EpisodeTracker()
        // Waiting, but too young to be resolved: the sampler gave it no blockers.
        var young = S.session(2)
        young.waitEventType = "Lock"
        #expect(tracker.observe(S.cycle(S.snapshot(1, [S.session(1), young], [S.holds(1, .accessExclusive)]))).isEmpty)
        #expect(tracker.open.isEmpty)
    }

    @Test func aDryRunDecidingEveryCycleIsRecordedOnce() throws {
        var tracker = EpisodeTracker()
        let dry = EpisodeDecision(participant: .session(1), action: "would_terminate", executed: nil, outcome: nil)
        for t in 4...8 { _ = tracker.observe(S.cycle(S.pileUp(Double(t)), decisions: [dry])) }
        #expect(tracker.open.first?.decisions.count == 1)
    }

    @Test func theClearedAlertCarriesTheEpisodeOfItsBlocker() throws {
        var tracker = EpisodeTracker()
        var policy = AlertPolicy()
        policy.minSeverity = .low
        policy.clearAfterSeconds = 0
        var alerts = AlertTracker(policy: policy, cluster: "prod")
        func run(_ c: EpisodeCycle) -> [Alert] {
            _ = tracker.observe(c)
            return alerts.observe(c.snapshot, assessments: c.assessments, deadlocks: [], episodes: tracker.known)
        }
        #expect(run(S.cycle(S.pileUp(4))).contains { $0.kind == .raised && $0.blocker?.pid == 1 })
        let cleared = run(S.cycle(S.quiet(5, [S.session(1, app: "report", state: .idle, xact: nil, changed: 4.5)])))
        let h = try #require(cleared.first { $0.kind == .cleared && $0.blocker?.pid == 1 })
        let episode = try #require(h.episode)
        #expect(episode.endedBy == "root_finished" && episode.waitingSessions == 3 && abs(episode.durationSeconds - 3.5) < 1e-6)
        #expect(episode.waiters.first?.pid == 2, "the longest wait first")
        #expect(h.summary.contains("episode \(episode.id): 3 sessions waited"))
        let m = try #require(cleared.first { $0.kind == .cleared && $0.blocker?.pid == 2 })
        #expect(m.episode?.id == episode.id, "the queued request's alert names the episode it waited in")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(h.json().utf8)) as? [String: Any])
        let object = try #require(json["episode"] as? [String: Any])
        #expect(object["ended_by"] as? String == "root_finished" && object["id"] as? String == episode.id)
    }
}
