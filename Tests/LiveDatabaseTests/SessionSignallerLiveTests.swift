import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// The statement that ends sessions: identity and "still blocking" are re-checked in the
    /// same statement, so a stale decision can never hit the wrong session.
    @Suite struct SessionSignallerLiveTests {
        /// An idle-in-transaction holder of an ACCESS EXCLUSIVE lock, and a waiter behind it.
        struct Scene {
            let holder: BackgroundSession
            let waiter: BackgroundSession
            let waiting: Task<Result<Void, PostgresError>, Never>
            let holderStart: Date
        }

        static func makeScene(db: String, admin: PostgresConnection, holderApplication: String = "lv-test-holder") async throws -> Scene {
            try admin.execute("CREATE TABLE IF NOT EXISTS t (id int)")
            let holder = try await BackgroundSession(database: db, applicationName: holderApplication)
            try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            let waiter = try await BackgroundSession(database: db, applicationName: "lv-test-waiter")
            let waiting = waiter.start("SELECT count(*) FROM t")
            try await waitUntil("waiter blocked") {
                try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [waiter.pid]).count == 1
            }
            let start = try admin.query("SELECT backend_start FROM pg_stat_activity WHERE pid = $1", [holder.pid])[0].decode("backend_start", as: Date.self)
            return Scene(holder: holder, waiter: waiter, waiting: waiting, holderStart: start)
        }

        @Test func terminatesTheRightSessionAndTheWaiterProceeds() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                let scene = try await Self.makeScene(db: db, admin: admin)
                let outcome = SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: SignalScope(allowSuperuser: true), on: admin)
                #expect(outcome == .done)
                if case .failure(let error) = await scene.waiting.value { Issue.record("waiter failed: \(error)") }
                #expect(try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [scene.holder.pid]).isEmpty)
                await scene.waiter.close()
            }
        }

        @Test func aDifferentBackendStartIsRefusedAndNothingIsSignalled() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                let scene = try await Self.makeScene(db: db, admin: admin)
                let stale = scene.holderStart.addingTimeInterval(-0.000_001)
                #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: stale, scope: SignalScope(allowSuperuser: true), on: admin) == .identityChanged)
                #expect(try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [scene.holder.pid]).count == 1, "the holder must survive")
                try await scene.holder.run("ROLLBACK")
                _ = await scene.waiting.value
                await scene.holder.close(); await scene.waiter.close()
            }
        }

        @Test func aSessionThatNoLongerBlocksIsLeftAlone() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                let scene = try await Self.makeScene(db: db, admin: admin)
                try await scene.holder.run("ROLLBACK", "BEGIN", "SELECT 1")   // idle in transaction, blocking nobody
                _ = await scene.waiting.value
                #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: SignalScope(allowSuperuser: true), on: admin) == .noLongerBlocking)
                #expect(try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [scene.holder.pid]).count == 1)
                await scene.holder.close(); await scene.waiter.close()
            }
        }

        @Test func lockvaultsOwnSessionsAndSuperusersAreProtected() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                let scene = try await Self.makeScene(db: db, admin: admin)
                // The test cluster's sessions are superusers: without allowSuperuser they are spared.
                #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: SignalScope(allowSuperuser: false), on: admin) == .protected)
                // Listed as one of lockvault's own sessions: spared even when superusers are allowed.
                #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: SignalScope(ownPids: [scene.holder.pid], allowSuperuser: true), on: admin) == .protected)
                #expect(try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [scene.holder.pid]).count == 1)
                try await scene.holder.run("ROLLBACK")
                _ = await scene.waiting.value
                await scene.holder.close(); await scene.waiter.close()
            }
        }

        /// The guard in the signalling statement is the kill rule's ProtectedSession list: a
        /// session named like lockvault is refused by the statement exactly when the rule calls
        /// it lockvault's own.
        @Test func theStatementRefusesWhatTheRuleProtects() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                let scene = try await Self.makeScene(db: db, admin: admin, holderApplication: "lockvault")
                let named = BackendActivity(pid: scene.holder.pid, backendStart: scene.holderStart, applicationName: "lockvault")
                for scope in [SignalScope(allowSuperuser: true), SignalScope(ownApplicationName: "lockvault-other", allowSuperuser: true)] {
                    let protected = ProtectedSession.protecting(named, scope: scope) != nil
                    if protected {
                        #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: scope, on: admin) == .protected)
                        #expect(try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [scene.holder.pid]).count == 1)
                    } else {
                        #expect(SessionSignaller.signal(.terminate, pid: scene.holder.pid, backendStart: scene.holderStart, scope: scope, on: admin) == .done)
                    }
                }
                #expect(ProtectedSession.protecting(named, scope: SignalScope(allowSuperuser: true)) == .lockvault)
                if case .failure(let error) = await scene.waiting.value { Issue.record("waiter failed: \(error)") }
                await scene.waiter.close()
            }
        }
    }
}
