import Foundation
import Testing
@testable import LockvaultCore

/// `blocking --at`: the vault's rows rebuilt into the live tree.
@Suite struct RecordedMomentTests {
    static let at = Fixture.now

    static func relation(_ mode: String, granted: Bool, waitStart: Date? = nil, blockedBy: [Int32]? = nil) -> RecordedSession.Lock {
        RecordedSession.Lock(lockType: "relation", lockMode: mode, granted: granted, databaseOid: 5, lockTargetKey: "relation/5/16384///////",
                             databaseName: "shop", relationName: "public.products", waitStart: waitStart, lockSince: waitStart ?? at.addingTimeInterval(-60),
                             blockedByPids: blockedBy)
    }

    /// H holds AccessShareLock, M queues for AccessExclusiveLock behind it, R1 and R2 queue behind M.
    static var pileUp: [RecordedSession] {
        [
            RecordedSession(pid: 10, backendStart: at.addingTimeInterval(-600), user: "app", application: "analytics", state: "idle in transaction",
                            xactStart: at.addingTimeInterval(-20), query: "SELECT count(*) FROM products",
                            blocker: .init(severity: "HIGH", blockingStarted: at.addingTimeInterval(-9), recommendedAction: "as recorded for H"),
                            locks: [relation("AccessShareLock", granted: true)]),
            RecordedSession(pid: 11, application: "deploy", state: "active", query: "ALTER TABLE products ADD COLUMN sku text", waitingFor: [10],
                            blocker: .init(severity: "MEDIUM", blockingStarted: at.addingTimeInterval(-8)),
                            locks: [relation("AccessExclusiveLock", granted: false, waitStart: at.addingTimeInterval(-9), blockedBy: [10])]),
            RecordedSession(pid: 12, application: "shop", state: "active", query: "SELECT * FROM products", waitingFor: [11],
                            locks: [relation("AccessShareLock", granted: false, waitStart: at.addingTimeInterval(-8), blockedBy: [11])]),
            RecordedSession(pid: 13, application: "shop", state: "active", query: "SELECT * FROM products", waitingFor: [11],
                            locks: [relation("AccessShareLock", granted: false, waitStart: at.addingTimeInterval(-7), blockedBy: [11])]),
        ]
    }

    @Test func thePileUpIsTheLiveTree() throws {
        let m = RecordedMoment(at: Self.at, sessions: Self.pileUp)
        #expect(m.forest.map(\.participant) == [.session(10)])
        #expect(m.forest[0].waiters.map(\.participant) == [.session(11)])
        #expect(m.graph.kind(waiter: .session(11), blocker: .session(10)) == .hard)
        #expect(m.graph.kind(waiter: .session(12), blocker: .session(11)) == .soft)
        let h = try #require(m.assessments.first { $0.participant == .session(10) })
        #expect(h.severity == .high && h.recommendedAction == "as recorded for H", "the vault's verdict, not today's policy")
        #expect(h.blockingDurationSeconds == 9 && h.heldMode == .accessShare && h.isRoot)
        let q = try #require(m.assessments.first { $0.participant == .session(11) })
        #expect(q.isQueuedRequest && q.blocksAs == .queued && q.queuedForMode == .accessExclusive && q.severity == .medium)
        let text = BlockingForestRenderer().render(m.snapshot, forest: m.forest, assessments: m.assessments)
        #expect(text.contains("pid 10  HIGH blocking 3 for 9 s"), "\(text)")
        #expect(text.contains("pid 11  MEDIUM blocking 2") && text.contains("queued ahead of 2 for AccessExclusiveLock"), "\(text)")
        #expect(text.contains("waiting 9 s for AccessExclusiveLock on relation public.products"), "\(text)")
    }

    @Test func aWaiterBehindAPreparedTransactionFindsItsGid() {
        let prepared = RecordedSession(pid: nil, gid: "tx-7", user: "app", database: "shop", state: "prepared", locks: [
            RecordedSession.Lock(lockType: "transactionid", lockMode: "ExclusiveLock", granted: true, lockTargetKey: "transactionid//////777///"),
            Self.relation("RowExclusiveLock", granted: true),
        ])
        let waiter = RecordedSession(pid: 20, application: "web", state: "active", waitingFor: [0],
                                     locks: [Self.relation("AccessExclusiveLock", granted: false, waitStart: Self.at.addingTimeInterval(-3), blockedBy: [0])])
        let m = RecordedMoment(at: Self.at, sessions: [prepared, waiter])
        #expect(m.forest.map(\.participant) == [.prepared("tx-7")])
        #expect(m.snapshot.preparedTransactions.first?.transactionID == "777")
        let text = BlockingForestRenderer().render(m.snapshot, forest: m.forest, assessments: m.assessments)
        #expect(text.contains("prepared transaction 'tx-7'"), "\(text)")
    }

    @Test func targetKeysComeBackAsTargets() {
        let vxid = RecordedSession.Lock(lockType: "virtualxid", lockMode: "ExclusiveLock", granted: true, lockTargetKey: "virtualxid/////3/45////")
            .record(pid: 1, virtualTransaction: nil)
        #expect(vxid.virtualXID == "3/45" && vxid.transactionID == nil && vxid.targetDescription == "virtual transaction 3/45")
        let tuple = RecordedSession.Lock(lockType: "tuple", lockMode: "ExclusiveLock", granted: true, lockTargetKey: "tuple/5/16384/0/3/////",
                                         relationName: "public.t").record(pid: 1, virtualTransaction: nil)
        #expect(tuple.targetDescription == "tuple (0,3) of public.t" && tuple.databaseOID == 5)
        let advisory = RecordedSession.Lock(lockType: "advisory", lockMode: "ExclusiveLock", granted: true, lockTargetKey: "advisory/5//////0/42/1")
            .record(pid: 1, virtualTransaction: nil)
        #expect(advisory.targetDescription == "advisory key 42")
    }

    @Test func nobodyWaitingIsNoBlocking() {
        let m = RecordedMoment(at: Self.at, sessions: [])
        #expect(m.forest.isEmpty && m.assessments.isEmpty)
        #expect(BlockingForestRenderer().render(m.snapshot, forest: m.forest, assessments: m.assessments).hasPrefix("no blocking"))
    }

    @Test func theEpisodesTableListsNewestFirstAsGiven() {
        let rows = [
            EpisodeListRow(episodeID: "b2", clusterName: "main", startedAt: Self.at, endedAt: nil, durationSeconds: 12, rootPid: 7, rootApplicationName: "etl",
                           rootState: "active", waitingSessions: 4, peakWaiting: 3, waitSecondsTotal: 30.25, longestWaitSeconds: 12, maxSeverity: "HIGH",
                           lockTargets: ["relation public.orders", "transaction 9"]),
            EpisodeListRow(episodeID: "a1", clusterName: "main", startedAt: Self.at.addingTimeInterval(-3600), endedAt: Self.at.addingTimeInterval(-3593),
                           durationSeconds: 7.2, rootPid: nil, waitingSessions: 1, peakWaiting: 1, waitSecondsTotal: 7.2, longestWaitSeconds: 7.2,
                           maxSeverity: "LOW", lockTargets: [], endedBy: "root_finished"),
        ]
        let lines = EpisodeTable(zone: TimeZone(secondsFromGMT: 0)!).render(rows).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("started") && lines[0].hasSuffix("episode") && !lines[0].contains("cluster"), "one cluster: no column")
        #expect(lines[1].contains("pid 7 etl (active)") && lines[1].contains("(open)") && lines[1].contains("relation public.orders +1") && lines[1].hasSuffix("b2"))
        #expect(lines[2].contains("prepared") && lines[2].contains("root_finished") && lines[2].contains("7.2 s"))
        let rootColumn = [lines[0].range(of: "root"), lines[1].range(of: "pid 7"), lines[2].range(of: "prepared")]
        #expect(Set(zip(lines, rootColumn).map { line, r in r.map { line.distance(from: line.startIndex, to: $0.lowerBound) } }).count == 1, "columns line up")
        #expect(EpisodeTable(zone: .current).render([]) == "no blocking episodes in that time\n")
    }
}
