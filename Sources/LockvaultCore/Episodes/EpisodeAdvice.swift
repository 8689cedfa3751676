import Foundation

/// The fix a DBA should make after an episode: not "kill pid 4711" (it is gone by morning) but
/// the setting or habit that stops the next one, with the statement to type.
///
/// Read from the story alone, in this order (each that applies, most specific first):
/// - a queued request (DDL queued behind the root, others queued behind it): `lock_timeout` for
///   the statement that queued, so it gives up and retries instead of shutting everyone out;
/// - a root idle in its transaction: `idle_in_transaction_session_timeout` for its role;
/// - a prepared transaction as root: finish it, and find the transaction manager that forgot it;
/// - a deadlock: one lock order;
/// - an active root: `statement_timeout` for its role, or shorter transactions; DDL as root:
///   `lock_timeout` and the CONCURRENTLY forms;
/// - advisory-lock queues: `pg_try_advisory_lock` or `lock_timeout` in the workers;
/// - and when the resolver ended it, that it did, so nobody mistakes that for the fix.
public struct EpisodeAdvice: Sendable, Equatable {
    /// The setting it is about (`lock_timeout`), or nil for a habit rather than a setting.
    public var setting: String?
    /// Why, in the episode's own terms.
    public var why: String
    /// What to type or change.
    public var fix: String

    public init(setting: String?, why: String, fix: String) {
        self.setting = setting
        self.why = why
        self.fix = fix
    }

    public static func advise(_ story: EpisodeStory) -> [EpisodeAdvice] {
        var advice: [EpisodeAdvice] = []
        let root = story.root
        let rootName = name(pid: root.pid, application: root.application, gid: root.gid)
        let duration = TimeText.seconds(story.durationSeconds)

        for q in queuedRequests(story) {
            let behind = story.waiters.filter { w in w.blockedBy.contains { $0.pid == q.pid && $0.kind == .soft } }.count
            let what = q.mode.map { " for \($0)" } ?? ""
            let on = q.lockTarget.map { " on \(clean($0))" } ?? ""
            let statement = q.query.map { ", running \(clean($0, 60))," } ?? ""
            let role = q.user.map { "ALTER ROLE \(ident($0)) SET lock_timeout = '2s';" }
            advice.append(EpisodeAdvice(
                setting: "lock_timeout",
                why: "\(name(pid: q.pid, application: q.application))\(statement) queued\(what)\(on) behind \(rootName)\(q.waitedSeconds.map { " for " + TimeText.seconds($0) } ?? ""), "
                    + "and \(behind) session\(behind == 1 ? "" : "s") queued behind its request: a statement waiting for a strong lock shuts out everyone after it.",
                fix: "Run such statements with a short lock timeout and retry them: SET lock_timeout = '2s'; before the DDL"
                    + (role.map { " (or for the role that runs migrations: \($0))" } ?? "") + "."))
        }

        if let gid = root.gid {
            advice.append(EpisodeAdvice(
                setting: nil,
                why: "The root was the prepared transaction '\(clean(gid))', which held its locks for \(duration): nothing ends it but COMMIT PREPARED or ROLLBACK PREPARED.",
                fix: "Finish it (COMMIT PREPARED '\(clean(gid))' or ROLLBACK PREPARED '\(clean(gid))'), find the transaction manager that left it, and watch pg_prepared_xacts; "
                    + "if nothing should use two-phase commit, set max_prepared_transactions = 0."))
        } else if let state = root.state, state.hasPrefix("idle in transaction") {
            let value = timeoutBelow(story.durationSeconds)
            let role = root.user.map { "ALTER ROLE \(ident($0)) SET idle_in_transaction_session_timeout = '\(value)';" }
                ?? "SET idle_in_transaction_session_timeout = '\(value)';"
            advice.append(EpisodeAdvice(
                setting: "idle_in_transaction_session_timeout",
                why: "\(rootName) sat idle in an open transaction, holding its locks while the application did something else, for the \(duration) the episode lasted.",
                fix: "Have \(root.application.map { "'\(clean($0))'" } ?? "the application") commit or roll back before it waits on anything else, and cap it: \(role)"))
        } else if story.ending == .deadlock {
            advice.append(EpisodeAdvice(
                setting: nil,
                why: "The sessions took the same locks in opposite orders; PostgreSQL's deadlock detector ended it by cancelling one of them.",
                fix: "Take locks in one order everywhere (for rows: SELECT … ORDER BY id FOR UPDATE before updating them), and retry transactions that fail with SQLSTATE 40P01."))
        } else if let query = root.query, isDDL(query) {
            advice.append(EpisodeAdvice(
                setting: "lock_timeout",
                why: "\(rootName) ran DDL (\(clean(query, 60))) that held a strong lock while the others waited.",
                fix: "Run DDL with SET lock_timeout = '2s' and retries, and prefer the forms that don't block: CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, "
                    + "ALTER TABLE … ADD CONSTRAINT … NOT VALID then VALIDATE CONSTRAINT."))
        } else if root.state == "active" {
            let value = timeoutBelow(story.durationSeconds)
            let role = root.user.map { "ALTER ROLE \(ident($0)) SET statement_timeout = '\(value)';" } ?? "SET statement_timeout = '\(value)';"
            advice.append(EpisodeAdvice(
                setting: "statement_timeout",
                why: "\(rootName) was running a statement\(root.query.map { " (\(clean($0, 60)))" } ?? "") in a transaction that held locks others needed, for \(duration).",
                fix: "Break the job into shorter transactions or run it off-peak; if it must never run this long, cap it: \(role)"))
        }

        if story.lockTargets.contains(where: { $0.hasPrefix("advisory") }) {
            advice.append(EpisodeAdvice(
                setting: nil,
                why: "Sessions queued for an advisory lock the root held.",
                fix: "Let workers that can skip the work use pg_try_advisory_lock, or give them a lock_timeout, so a stuck holder does not pile the queue up."))
        }

        switch story.ending {
        case .rootTerminated, .rootCancelled, .queueCancelled:
            let acted = story.decisions.filter(\.executed).map { "\($0.action) pid \($0.pid)" }.joined(separator: ", ")
            advice.append(EpisodeAdvice(
                setting: nil,
                why: "lockvault's resolver ended it\(acted.isEmpty ? "" : " (\(acted))"): that stopped this episode, not the next one.",
                fix: advice.isEmpty ? "Find out why \(rootName) held its locks that long; the resolver is the last line, not the fix." : "Make the change above as well."))
        case .unobserved:
            advice.append(EpisodeAdvice(
                setting: nil,
                why: "lockvault was not watching when it ended, so how it ended is not known.",
                fix: "Check why lockvault stopped observing (lockvault status; lock_monitoring.monitor_gap_s) so the next episode is seen to its end."))
        default:
            break
        }

        if advice.isEmpty {
            advice.append(EpisodeAdvice(
                setting: "lock_timeout",
                why: "\(story.waiters.count) session\(story.waiters.count == 1 ? "" : "s") waited up to \(TimeText.seconds(story.longestWaitSeconds)) behind \(rootName).",
                fix: "Give the waiting application a lock_timeout (ALTER ROLE … SET lock_timeout = '5s') so it fails fast and retries instead of piling up, "
                    + "and find out why \(rootName) held its locks that long."))
        }
        return advice
    }

    /// Waiters that others waited behind only for their place in the queue: DDL or LOCK TABLE
    /// queued behind the root, with the application queued behind them.
    public static func queuedRequests(_ story: EpisodeStory) -> [EpisodeStory.Waiter] {
        let queuedAhead = Set(story.waiters.flatMap { w in w.blockedBy.filter { $0.kind == .soft }.map(\.pid) })
        return story.waiters.filter { queuedAhead.contains($0.pid) }.sorted { $0.firstWaitAt < $1.firstWaitAt }
    }

    /// A round timeout shorter than the episode, so that it would have ended this one: 5 s at least.
    static func timeoutBelow(_ seconds: Double) -> String {
        let steps: [(Double, String)] = [(3600, "1h"), (600, "10min"), (300, "5min"), (60, "1min"), (30, "30s"), (10, "10s")]
        return steps.first { $0.0 < seconds }?.1 ?? "5s"
    }

    static func isDDL(_ query: String) -> Bool {
        let head = query.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        return ["ALTER ", "CREATE INDEX", "CREATE UNIQUE INDEX", "DROP ", "TRUNCATE", "REINDEX", "CLUSTER", "VACUUM FULL", "LOCK ", "REFRESH MATERIALIZED"]
            .contains { head.hasPrefix($0) }
    }

    static func name(pid: Int32, application: String?, gid: String? = nil) -> String {
        if let gid { return "prepared transaction '\(clean(gid))'" }
        guard let application, !application.isEmpty else { return "pid \(pid)" }
        return "pid \(pid) (\(clean(application, 40)))"
    }

    /// A role name as SQL wants it: quoted when it is not a plain lower-case identifier.
    static func ident(_ name: String) -> String {
        let plain = name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") } && !(name.first?.isNumber ?? true)
        return plain ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func clean(_ text: String, _ width: Int = 80) -> String { BlockingForestRenderer.clean(text, width) }
}
