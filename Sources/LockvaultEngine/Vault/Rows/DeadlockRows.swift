import Foundation
import LockvaultCore

/// deadlock_counter_s (sql/functions/record_deadlock_counters.sql): pg_stat_database.deadlocks of one database.
struct DeadlockCounterRow: Encodable, Sendable {
    var database_name: String
    var deadlocks: Int64
    var hash_diff: HashDiff

    init(database: String, deadlocks: Int64) {
        database_name = database
        self.deadlocks = deadlocks
        hash_diff = HashDiff([String(deadlocks)])
    }
}

/// deadlock_event_h/_s (sql/functions/record_deadlocks.sql): what is known about one deadlock.
struct DeadlockRow: Encodable, Sendable {
    var deadlock_event: DeadlockEventKey
    var hash_diff: HashDiff
    var detected_at: Date
    var database_name: String
    var sources: [String]
    var participant_pids: [Int32]
    var victim_pid: Int32?
    var details: String?

    init(_ event: DeadlockEvent) {
        let sources = event.sources.sorted().map(\.rawValue)
        let pids = event.participants.map(\.pid).sorted()
        deadlock_event = DeadlockEventKey(database_name: event.database, event_key: event.eventKey)
        detected_at = event.detectedAt
        database_name = event.database
        self.sources = sources
        participant_pids = pids
        victim_pid = event.victimPid
        details = event.details
        hash_diff = HashDiff([sources.joined(separator: ","), pids.map(String.init).joined(separator: ","), event.victimPid.map(String.init), event.details])
    }
}

/// deadlock_involvement_l/_s (sql/functions/record_deadlock_participants.sql): one session in a deadlock.
struct DeadlockParticipantRow: Encodable, Sendable {
    var deadlock_event: DeadlockEventKey
    var blocking_session: SessionKey
    var hash_diff: HashDiff
    var session_pid: Int32
    var waits_for: String
    var blocked_by_pid: Int32?
    var is_victim: Bool
    var query: String?

    init(_ p: DeadlockParticipant, of event: DeadlockEvent, session: SessionKey) {
        deadlock_event = DeadlockEventKey(database_name: event.database, event_key: event.eventKey)
        blocking_session = session
        session_pid = p.pid
        waits_for = p.waitsFor
        blocked_by_pid = p.blockedBy
        is_victim = p.pid == event.victimPid
        query = p.query
        hash_diff = HashDiff([p.waitsFor, p.blockedBy.map(String.init), HashDiff.flag(is_victim), p.query])
    }
}
