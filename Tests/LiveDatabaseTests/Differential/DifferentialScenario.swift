/// One random but reproducible lock scenario: 3–8 sessions, each with the statements it will
/// issue, and the generator that decides the interleaving as the scenario runs.
///
/// Everything comes from the seed. The interleaving is drawn at run time (which session issues
/// its next step among those that are free), but which sessions are free depends only on the
/// server's answers to the same statements, so the same seed replays the same scenario.
struct DifferentialScenario {
    enum Role: Equatable {
        /// BEGIN, its steps, and the transaction stays open until the scenario ends.
        case transaction
        /// BEGIN, its steps, then PREPARE TRANSACTION: its locks stay, held by no session (pid 0).
        case prepared(gid: String)
        /// One statement that cannot run in a transaction block (VACUUM FULL).
        case autocommit
    }

    struct Session {
        var index: Int
        var role: Role
        /// Each step is issued at once and runs its statements in order; a step that waits holds
        /// the session until it is granted (or cancelled when the scenario ends).
        var steps: [[String]]

        var name: String { "s\(index)" }
    }

    static let tables = ["dt1", "dt2", "dt3"]
    static let rows = 1...3
    static let lockModes = ["ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
                            "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"]
    static let rowLocks = ["FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE"]

    let seed: UInt64
    /// The sessions' `deadlock_timeout`: mostly long, so a deadlock stands still and can be
    /// compared; sometimes short, so the server's detector cancels a victim or reorders a queue
    /// (a soft deadlock) while the scenario runs.
    let deadlockTimeoutMs: Int
    let sessions: [Session]
    /// Draws the interleaving; seeded apart from the generation so both are fixed by `seed`.
    var interleaving: SplitMix64

    /// - Parameter parallelSetting: the GUC that forces a parallel plan (`force_parallel_mode`
    ///   on 15, `debug_parallel_query` from 16): only the text differs, never the draws.
    init(seed: UInt64, parallelSetting: String) {
        self.seed = seed
        var g = SplitMix64(seed: seed)
        interleaving = SplitMix64(seed: g.next())
        deadlockTimeoutMs = g.chance(0.2) ? 50 : 20_000
        let count = g.int(3...8)
        var sessions: [Session] = []
        var hasPrepared = false
        for index in 0..<count {
            if g.chance(0.08) {
                sessions.append(Session(index: index, role: .autocommit, steps: [["VACUUM FULL \(g.pick(Self.tables))"]]))
                continue
            }
            let prepared = !hasPrepared && g.chance(0.12)
            var steps = (0..<g.int(prepared ? 1...2 : 1...3)).map { op in Self.operation(&g, session: index, op: op, parallelSetting: parallelSetting) }
            steps[0].insert("BEGIN", at: 0)
            if prepared {
                hasPrepared = true
                let gid = "lv_diff_\(seed)_\(index)"
                steps.append(["PREPARE TRANSACTION '\(gid)'"])
                sessions.append(Session(index: index, role: .prepared(gid: gid), steps: steps))
            } else {
                sessions.append(Session(index: index, role: .transaction, steps: steps))
            }
        }
        self.sessions = sessions
    }

    /// One operation: the statements of one step.
    static func operation(_ g: inout SplitMix64, session: Int, op: Int, parallelSetting: String) -> [String] {
        let table = g.pick(tables)
        let row = g.int(rows)
        let roll = g.int(0...99)
        switch roll {
        case 0..<12: return ["SELECT 1 FROM \(table) WHERE id = \(row) \(g.pick(rowLocks))"]
        case 12..<20: return ["UPDATE \(table) SET v = v + 1 WHERE id = \(row)"]
        case 20..<25: return ["DELETE FROM \(table) WHERE id = \(row)"]
        case 25..<50: return ["LOCK TABLE \(table) IN \(g.pick(lockModes)) MODE"]
        case 50..<57: return ["SELECT pg_advisory_xact_lock(\(g.int(1...2)))"]
        case 57..<64: return ["SELECT pg_advisory_xact_lock_shared(\(g.int(1...2)))"]
        case 64..<69: return ["ALTER TABLE \(table) ADD COLUMN c\(session)_\(op) int"]
        case 69..<73: return ["ALTER TABLE \(table) ALTER COLUMN v SET STATISTICS \(100 + op)"]
        case 73..<79: return ["CREATE INDEX ON \(table) (v)"]
        case 79..<90:
            // The worker runs the function and locks the table it reads, which the leader never
            // locked: the worker waits on the relation lock while the leader waits on IPC. With
            // two functions (a third of them, from the row drawn) the worker may hold the first
            // table's lock while it waits for the second: others then wait for a worker.
            let other = g.pick(tables)
            var condition = "\(other)_peek() >= 0"
            if row == rows.upperBound { condition += " AND \(tables[(tables.firstIndex(of: other)! + 1) % tables.count])_peek() >= 0" }
            return ["SET LOCAL \(parallelSetting) = on", "SELECT count(*) FROM \(table) WHERE \(condition)",
                    "SET LOCAL \(parallelSetting) = off"]
        default: return ["SELECT count(*) FROM \(table)"]
        }
    }

    /// The SQL that creates the scenario's tables (once per suite run).
    static var setupSQL: String {
        tables.map { t in
            """
            CREATE TABLE \(t) (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
            INSERT INTO \(t) SELECT i, 0 FROM generate_series(\(rows.lowerBound), \(rows.upperBound)) i;
            CREATE FUNCTION \(t)_peek() RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$ BEGIN RETURN (SELECT count(*) FROM \(t)); END $$;
            """
        }.joined(separator: "\n")
    }

    /// How to run this scenario alone.
    var reproduction: String {
        "LOCKVAULT_TEST_DIFFERENTIAL_SEED=\(seed) LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS=1 scripts/test.sh [--pg NN] --filter DifferentialLiveTests"
    }

    /// The sessions and their statements, as a DBA would type them into psqls.
    var script: String {
        var lines = ["seed \(seed), \(sessions.count) sessions, deadlock_timeout \(deadlockTimeoutMs) ms"]
        for s in sessions {
            lines.append("  \(s.name): " + s.steps.map { $0.joined(separator: "; ") }.joined(separator: " | "))
        }
        return lines.joined(separator: "\n")
    }
}
