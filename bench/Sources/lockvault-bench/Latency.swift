// Detection latency: how long after a blocking situation (or a deadlock) starts its row is visible
// in the vault's dashboards, with the real daemon (started by bench/run.sh) sampling at 1 Hz.
//
// Blocking trials alternate an advisory-lock wait and a relation-lock wait (EXCLUSIVE vs
// SELECT … FOR UPDATE). Neither side takes a transaction id, so the trials themselves write no
// WAL: the storage numbers taken around this phase are the daemon's. Each trial starts after a
// random 0–1 s pause, so its start falls anywhere in the daemon's 1 s cycle.
import Foundation
import PostgresClient

/// Set once, read from the polling loop: when a background statement returned.
final class Stamp: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ContinuousClock.Instant?
    func set() { lock.withLock { if value == nil { value = .now } } }
    var instant: ContinuousClock.Instant? { lock.withLock { value } }
}

struct LatencyResult {
    var blocking: [Double] = []        // ms, statement issued → row in blocking_sessions_dashboard
    var blockingTimeouts = 0
    var deadlockFromCycle: [Double] = []    // ms, cycle closed → row in deadlock_events_dashboard
    var deadlockFromServer: [Double] = []   // ms, the server's "deadlock detected" → row
    var deadlockTimeouts = 0
    var deadlockSources: [String: Int] = [:]
}

/// `minWait`: the daemon's sampling.min_wait_seconds; a wait is seen once it is that old, so the
/// blocking target is that plus 1.5 s (the cycle that first sees it, the next that resolves it).
func detectionLatency(workDB: String, vaultDB: String, blockingTrials: Int, deadlockTrials: Int, minWait: Double = 0) async throws -> String {
    let settings = SessionSettings(applicationName: "lv-bench-latency", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    try setup.executeScript("CREATE TABLE IF NOT EXISTS lat_t (id int)")
    setup.close()
    let poller = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-bench-poll", statementTimeoutMs: 0, lockTimeoutMs: 0))
    let timeout = Duration.seconds(10)
    var result = LatencyResult()

    func dephase() async throws { try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000))) }

    for trial in 0..<blockingTrials {
        let advisory = trial % 2 == 0
        let holder = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
        try holder.execute("BEGIN")
        if advisory { _ = try holder.query("SELECT pg_advisory_xact_lock(7001)") } else { try holder.execute("LOCK TABLE lat_t IN EXCLUSIVE MODE") }
        let waiter = PostgresSession(conninfo: "dbname=\(workDB)", settings: settings, name: "lv-bench-waiter")
        _ = try await waiter.withConnection { $0.backendPID }
        try await dephase()
        let start = ContinuousClock.now
        let waiting = Task { _ = try? await waiter.withConnection { try $0.query(advisory ? "SELECT pg_advisory_xact_lock(7001)" : "SELECT * FROM lat_t FOR UPDATE") } }
        var seen = false
        while ContinuousClock.now - start < timeout {
            if try poller.query("SELECT EXISTS (SELECT 1 FROM lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1) AS seen", [holder.backendPID])[0].decode("seen", as: Bool.self) {
                seen = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        if seen { result.blocking.append(ms(ContinuousClock.now - start)) } else { result.blockingTimeouts += 1 }
        try holder.execute("ROLLBACK")
        holder.close()
        await waiting.value
        await waiter.close()
    }

    for _ in 0..<deadlockTrials {
        let a = PostgresSession(conninfo: "dbname=\(workDB)", settings: settings, name: "lv-bench-dl-a")
        let b = PostgresSession(conninfo: "dbname=\(workDB)", settings: settings, name: "lv-bench-dl-b")
        try await a.withConnection { c in try c.execute("BEGIN"); _ = try c.query("SELECT pg_advisory_xact_lock(8001)") }
        try await b.withConnection { c in try c.execute("BEGIN"); _ = try c.query("SELECT pg_advisory_xact_lock(8002)") }
        let before = try poller.query("SELECT count(*) AS n FROM lock_monitoring.deadlock_events_dashboard")[0].decode("n", as: Int.self)
        let detected = Stamp()
        let first = Task { do { _ = try await a.withConnection { try $0.query("SELECT pg_advisory_xact_lock(8002)") } } catch { detected.set() } }
        try await Task.sleep(for: .milliseconds(20))
        try await dephase()
        let start = ContinuousClock.now
        let second = Task { do { _ = try await b.withConnection { try $0.query("SELECT pg_advisory_xact_lock(8001)") } } catch { detected.set() } }
        var sources: String?
        while ContinuousClock.now - start < timeout {
            let rows = try poller.query("""
                SELECT sources FROM lock_monitoring.deadlock_events_dashboard
                ORDER BY detected_at DESC LIMIT greatest((SELECT count(*) FROM lock_monitoring.deadlock_events_dashboard) - $1, 0)
                """, [before])
            if let row = rows.first { sources = try row.decode("sources", as: String.self); break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let now = ContinuousClock.now
        if let sources {
            result.deadlockFromCycle.append(ms(now - start))
            if let d = detected.instant { result.deadlockFromServer.append(ms(now - d)) }
            result.deadlockSources[sources, default: 0] += 1
        } else {
            result.deadlockTimeouts += 1
        }
        // The survivor got its lock, the victim's transaction is aborted: end both (each
        // session runs this after its pending statement returned).
        _ = try? await a.withConnection { try $0.execute("ROLLBACK") }
        _ = try? await b.withConnection { try $0.execute("ROLLBACK") }
        await first.value
        await second.value
        await a.close()
        await b.close()
        // Let the daemon see the counter settle before the next trial's baseline.
        try await Task.sleep(for: .milliseconds(300))
    }
    poller.close()

    func row(_ name: String, _ v: [Double], _ target: Double, _ timeouts: Int, _ trials: Int) -> String {
        let p50 = percentile(v, 0.5), p99 = percentile(v, 0.99)
        let verdict = timeouts == 0 && p99 <= target ? "met" : "MISSED"
        return "| \(name) | \(v.count) of \(trials) | \(String(format: "%.0f", p50)) | \(String(format: "%.0f", percentile(v, 0.9))) | \(String(format: "%.0f", p99)) | \(String(format: "%.0f", v.max() ?? .nan)) | ≤ \(String(format: "%.0f", target)) | \(verdict) |"
    }
    var out = "| from → to | trials seen | p50 ms | p90 ms | p99 ms | max ms | target (p99) ms | |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
    out += row("blocked statement issued → blocking_sessions_dashboard", result.blocking, 1500 + 1000 * minWait, result.blockingTimeouts, blockingTrials) + "\n"
    guard deadlockTrials > 0 else { return out }
    out += row("deadlock cycle closed → deadlock_events_dashboard", result.deadlockFromCycle, 2000, result.deadlockTimeouts, deadlockTrials) + "\n"
    out += "| server reports the deadlock → deadlock_events_dashboard | \(result.deadlockFromServer.count) of \(deadlockTrials) | \(String(format: "%.0f", percentile(result.deadlockFromServer, 0.5))) | \(String(format: "%.0f", percentile(result.deadlockFromServer, 0.9))) | \(String(format: "%.0f", percentile(result.deadlockFromServer, 0.99))) | \(String(format: "%.0f", result.deadlockFromServer.max() ?? .nan)) | (informational) | |\n"
    out += "\nDeadlock rows by `sources` when first seen: " + result.deadlockSources.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "."
    if result.blockingTimeouts + result.deadlockTimeouts > 0 {
        out += " Not seen within 10 s: \(result.blockingTimeouts) blocking, \(result.deadlockTimeouts) deadlock trials."
    }
    return out
}
