import Foundation
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Every engine scenario runs its monitor as ``EngineScenario/leastPrivilegedRole``; this
    /// proves that role really is what docs/operations.md tells operators to create, and that
    /// the monitor really connects as it.
    @Suite struct LeastPrivilegeLiveTests {
        @Test func scenariosSampleAndWriteAsARoleWithOnlyTheDocumentedGrants() async throws {
            try await EngineScenario.run { s in
                let role = EngineScenario.leastPrivilegedRole
                let attributes = try #require(try s.rows("""
                    SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1
                    """, [role]).first)
                for flag in ["rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls"] {
                    #expect(try attributes.decode(flag, as: Bool.self) == false, "\(role) has \(flag)")
                }
                let memberships = Set(try s.rows("""
                    SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                    WHERE u.rolname = $1
                    """, [role]).map { try $0.decode("rolname", as: String.self) })
                #expect(memberships == EngineScenario.leastPrivilegedGrants)
                let owns = try s.rows("SELECT 1 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1", [role])
                #expect(owns.isEmpty, "\(role) owns no tables")

                // A real blocking situation, sampled and recorded by that role.
                try s.admin.execute("CREATE TABLE t (id int)")
                try s.admin.execute("GRANT ALL ON t TO PUBLIC")
                let holder = try await s.session("lp-holder")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiter = try await s.session("lp-waiter")
                let waiting = waiter.start("SELECT count(*) FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                #expect(outcome.assessments.map(\.pid) == [holder.pid])
                let monitorRoles = try s.rows("SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'lockvault' AND datname = $1", [s.database])
                    .map { try $0.decode("usename", as: String.self) }
                #expect(monitorRoles == [role], "the monitor's sessions run as \(role)")
                let recorded = try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s WHERE session_pid = $1", [holder.pid])[0]
                #expect(try recorded.decode("n", as: Int.self) == 1)
                try await holder.run("ROLLBACK")
                _ = await waiting.value
            }
        }
    }
}
