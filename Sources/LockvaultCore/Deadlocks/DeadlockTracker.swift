public import Foundation

/// One deadlock as lockvault records it, alerts on and reports, however many sources saw it.
public struct DeadlockEvent: Sendable, Hashable {
    public enum Source: String, Sendable, Hashable, Comparable {
        case counter, graph, server_log
        public static func < (a: Source, b: Source) -> Bool { a.rawValue < b.rawValue }
    }

    /// Stable within cluster and database: the vault's business key (alerting twice on the
    /// same key never happens).
    public let eventKey: String
    public var database: String
    public var detectedAt: Date
    public var sources: Set<Source>
    public var participants: [DeadlockParticipant]
    public var victimPid: Int32?
    public var details: String?
    /// Matched to a `pg_stat_database.deadlocks` increment.
    var counted: Bool
    /// Set when the deadlock happened while nobody was sampling (lockvault not running, e.g.
    /// between two `lockvault sample --once`): the counter rose some time after this moment
    /// and before ``detectedAt``. nil when it was seen within one cycle.
    public var occurredAfter: Date?
    /// For a cycle seen in the graph: the last cycle that still saw it.
    var graphSeenAt: Date? = nil

    public var pids: Set<Int32> { Set(participants.map(\.pid)) }

    /// The server said so: its counter moved for it, or its log reported it. A cycle in
    /// lockvault's graph alone is not a deadlock: the server's queue may not be what pg_locks
    /// suggests, and its detector may resolve a soft deadlock by reordering the queue, with no
    /// one cancelled.
    public var isConfirmed: Bool { sources.contains(.counter) || sources.contains(.server_log) }
}

extension DeadlockEvent {
    /// The tracker's own events use the memberwise init (``counted`` as matched so far).
    public init(eventKey: String, database: String, detectedAt: Date, sources: Set<Source>, participants: [DeadlockParticipant],
                victimPid: Int32? = nil, details: String? = nil) {
        self.init(eventKey: eventKey, database: database, detectedAt: detectedAt, sources: sources, participants: participants,
                  victimPid: victimPid, details: details, counted: sources.contains(.counter))
    }
}

/// A database's `pg_stat_database.deadlocks` as the vault last recorded it
/// (`deadlock_counter_s`): the baseline a new process resumes from.
public struct RecordedDeadlockCount: Sendable, Hashable {
    public var deadlocks: Int64
    /// The latest moment the vault knows the counter stood at this value.
    public var seenAt: Date

    public init(deadlocks: Int64, seenAt: Date) {
        self.deadlocks = deadlocks
        self.seenAt = seenAt
    }
}

/// Merges what three sources say about deadlocks into one event per deadlock.
///
/// - `pg_stat_database.deadlocks` never misses one but says nothing about it (and is flushed by
///   the server up to a second late);
/// - a cycle in the wait-for graph is seen only if a sample lands inside `deadlock_timeout`;
/// - the server log's "deadlock detected" report names participants and queries, when the log
///   is configured and readable.
/// A log report or live cycle matching a recent event (same database, overlapping pids, within
/// `window`) enriches it; each counter increment is matched to one not-yet-counted event of its
/// database, oldest first, and only unmatched increments become counter-only events. So no
/// deadlock is recorded twice, and none is lost.
///
/// A deadlock is a deadlock when the server says so: a cycle seen only in the graph is kept,
/// unreported, until a counter increment or a log report confirms it (it is then reported with
/// the graph among its sources); until then it is a blocking situation like any other, and if
/// nothing confirms it within the window it is forgotten.
///
/// A new process (a cron job's `lockvault sample --once`, a restarted daemon) has no counts of
/// its own: it resumes from the vault's (``RecordedDeadlockCount``), and what the counters
/// rose by meanwhile becomes counter-only events timed "between the vault's reading and now".
///
/// The server log names the database only when `log_line_prefix` has `%d`; otherwise a report
/// is placed by the database OID in its DETAIL (`… of database 16384`, mapped through
/// `databaseNames`), else by its participants' sessions (seen in this or recent snapshots).
public struct DeadlockTracker: Sendable {
    public var window: TimeInterval
    private var lastCounts: [String: Int64]?
    private var recent: [DeadlockEvent] = []
    /// pid → database of sessions seen in recent snapshots (a participant may be gone by the
    /// time the server log's report is read).
    private var sessionDatabases: [Int32: (database: String, seenAt: Date)] = [:]

    public init(window: TimeInterval = 60) {
        self.window = window
    }

    /// True until the first cycle: the caller should read the vault's last recorded counters
    /// and pass them as `recorded` (nil when the vault can't say: the first reading is then
    /// the baseline, as it must be for a cluster never recorded before).
    public var wantsRecordedBaseline: Bool { lastCounts == nil }

    /// Feeds one cycle's snapshot (its deadlock counters and the wait graph's cycles) and the
    /// server log reports read since the last; returns the events that are new or changed.
    /// `databaseNames` maps database OIDs (of reports without a database name) to names.
    public mutating func observe(_ snapshot: LockSnapshot, graph: WaitGraph, reports: [DeadlockReport],
                                 recorded: [String: RecordedDeadlockCount]? = nil, databaseNames: [UInt32: String] = [:]) -> [DeadlockEvent] {
        let now = snapshot.capturedAt
        sessionDatabases = sessionDatabases.filter { now.timeIntervalSince($0.value.seenAt) <= window }
        for (pid, db) in snapshot.sessionDatabases { sessionDatabases[pid] = (db, now) }
        let cycles = graph.cycles.map { members -> (database: String, pids: [Int32]) in
            let pids = members.compactMap(\.pid)
            return (pids.compactMap { snapshot.backend($0)?.database }.first ?? "", pids)
        }
        let placed = reports.map { report -> DeadlockReport in
            var r = report
            r.database = database(of: report, databaseNames: databaseNames)
            return r
        }
        return observe(counts: snapshot.deadlockCounts, cycles: cycles, reports: placed, at: now, recorded: recorded)
    }

    /// The database a server-log report belongs to: its own (`%d`), else its DETAIL's database
    /// OID, else its participants' sessions; nil when none says.
    func database(of report: DeadlockReport, databaseNames: [UInt32: String]) -> String? {
        if let db = report.database, !db.isEmpty { return db }
        if let oid = report.databaseOID, let name = databaseNames[oid] { return name }
        for pid in [report.victimPid].compactMap({ $0 }) + report.participants.map(\.pid) {
            if let db = sessionDatabases[pid]?.database { return db }
        }
        return nil
    }

    /// Feeds one cycle; returns the events that are new or changed (to write). `recorded` is
    /// used only on the first call (see ``wantsRecordedBaseline``).
    public mutating func observe(counts: [String: Int64], cycles: [(database: String, pids: [Int32])], reports: [DeadlockReport], at now: Date,
                                 recorded: [String: RecordedDeadlockCount]? = nil) -> [DeadlockEvent] {
        // An unconfirmed cycle no longer seen for a window was never a deadlock the server knew.
        recent.removeAll { now.timeIntervalSince($0.detectedAt) > window * 2 || (!$0.isConfirmed && now.timeIntervalSince($0.graphSeenAt ?? now) > window) }
        var changed: Set<String> = []

        for report in reports {
            let db = report.database ?? ""
            let when = report.detectedAt ?? now
            if let i = match(database: db, pids: report.pids, near: when) {
                recent[i].sources.insert(.server_log)
                recent[i].participants = report.participants
                recent[i].victimPid = report.victimPid
                recent[i].details = Self.details(report)
                if report.detectedAt != nil { recent[i].detectedAt = when }
                changed.insert(recent[i].eventKey)
            } else {
                let pids = report.participants.map(\.pid).sorted().map(String.init).joined(separator: ",")
                let event = DeadlockEvent(eventKey: "log:\(VaultHash.timestamp(when)):\(pids)", database: db, detectedAt: when, sources: [.server_log],
                                          participants: report.participants, victimPid: report.victimPid, details: Self.details(report), counted: false)
                recent.append(event)
                changed.insert(event.eventKey)
            }
        }

        for cycle in cycles {
            let pids = Set(cycle.pids)
            if let i = match(database: cycle.database, pids: pids, near: now) {
                recent[i].graphSeenAt = now
                if !recent[i].sources.contains(.graph) {
                    recent[i].sources.insert(.graph)
                    if recent[i].participants.isEmpty {
                        recent[i].participants = cycle.pids.sorted().map { DeadlockParticipant(pid: $0, waitsFor: "", blockedBy: nil, query: nil) }
                    }
                    changed.insert(recent[i].eventKey)
                }
            } else {
                let event = DeadlockEvent(eventKey: "graph:\(VaultHash.timestamp(now)):\(cycle.pids.sorted().map(String.init).joined(separator: ","))",
                                          database: cycle.database, detectedAt: now, sources: [.graph],
                                          participants: cycle.pids.sorted().map { DeadlockParticipant(pid: $0, waitsFor: "", blockedBy: nil, query: nil) },
                                          victimPid: nil, details: nil, counted: false, graphSeenAt: now)
                recent.append(event)
                changed.insert(event.eventKey)
            }
        }

        // The previous reading: this process's own, or (first cycle) the vault's.
        let resumed = lastCounts == nil ? recorded : nil
        if let last = lastCounts ?? resumed?.mapValues(\.deadlocks) {
            for (db, count) in counts.sorted(by: { $0.key < $1.key }) {
                guard let before = last[db], count > before else { continue }   // new database or stats reset: new baseline
                var remaining = count - before
                // Log reports whose database is unknown (no %d, no OID, participants gone) are
                // still one deadlock each: an increment anywhere may be theirs.
                // Reported deadlocks first (oldest first), then cycles seen only in the graph, the
                // one seen last first: the detector breaks a real one within deadlock_timeout.
                let candidates = recent.indices.filter { (recent[$0].database == db || recent[$0].database.isEmpty) && !recent[$0].counted }
                    .sorted { a, b in
                        let (ra, rb) = (recent[a].isConfirmed, recent[b].isConfirmed)
                        if ra != rb { return ra }
                        return ra ? a < b : (recent[a].graphSeenAt ?? .distantPast) > (recent[b].graphSeenAt ?? .distantPast)
                    }
                for i in candidates where remaining > 0 {
                    recent[i].counted = true
                    recent[i].sources.insert(.counter)
                    changed.insert(recent[i].eventKey)
                    remaining -= 1
                }
                var n = count - remaining
                let since = resumed?[db]?.seenAt
                while remaining > 0 {
                    n += 1
                    let details = since.map {
                        "pg_stat_database.deadlocks of \(db) rose from \(before) to \(count) between \(VaultHash.timestamp($0)) and \(VaultHash.timestamp(now)), "
                            + "while lockvault was not sampling: participants unknown (the server log, if kept, has them)"
                    }
                    let event = DeadlockEvent(eventKey: "counter:\(VaultHash.timestamp(now)):\(n)", database: db, detectedAt: now, sources: [.counter],
                                              participants: [], victimPid: nil, details: details, counted: true, occurredAfter: since)
                    recent.append(event)
                    changed.insert(event.eventKey)
                    remaining -= 1
                }
            }
        }
        lastCounts = counts
        return recent.filter { changed.contains($0.eventKey) && $0.isConfirmed }
    }

    /// A recent event in `database` that is the same deadlock: overlapping pids, or one with no
    /// pids yet (counter-only) close in time.
    private func match(database: String, pids: Set<Int32>, near when: Date) -> Int? {
        // An unknown database ("") can only be matched by pids or time, never left unmerged.
        let candidates = recent.indices.filter { i in
            (recent[i].database == database || database.isEmpty || recent[i].database.isEmpty)
                && abs(recent[i].detectedAt.timeIntervalSince(when)) <= window
        }
        if let i = candidates.first(where: { !recent[$0].pids.isDisjoint(with: pids) }) { return i }
        return candidates.first { recent[$0].pids.isEmpty }
    }

    static func details(_ report: DeadlockReport) -> String {
        var lines = report.participants.map { p in
            "Process \(p.pid) waits for \(p.waitsFor)\(p.blockedBy.map { "; blocked by process \($0)" } ?? "")."
        }
        lines += report.participants.compactMap { p in p.query.map { "Process \(p.pid): \($0)" } }
        return lines.joined(separator: "\n")
    }
}
