import LockvaultCore
import Testing

/// What `lockvault migrate`'s roles step decides from the catalog (no database): the live
/// side is MigrateRolesLiveTests.
@Suite struct VaultRolesTests {
    static let everything = VaultRoleFacts(
        serverVersionNum: 180006, currentUser: "owner", isSuperuser: false, hasCreateRole: false,
        existingRoles: Set(VaultRoles.all), existingMemberships: Set(VaultRoles.memberships), adminOptionOn: [])

    static func facts(_ change: (inout VaultRoleFacts) -> Void) -> VaultRoleFacts {
        var f = everything
        change(&f)
        return f
    }

    @Test func everythingThereNeedsNoPrivilegeAtAll() {
        let plan = VaultRoles.plan(Self.everything)
        #expect(!plan.isBlocked)
        #expect(plan.missingStatements.isEmpty)
        #expect(plan.reportLines() == [
            "role lock_monitoring_role: already there", "role lock_admin_role: already there", "role lock_writer_role: already there",
            "grant lock_monitoring_role to lock_admin_role: already there",
        ])
    }

    @Test func missingRolesWithoutCreateRoleBlockEverythingAndListEveryMissingStatement() {
        let plan = VaultRoles.plan(Self.facts { $0.existingRoles = [VaultRoles.writer]; $0.existingMemberships = [] })
        #expect(plan.isBlocked)
        #expect(plan.missingStatements == [
            "CREATE ROLE lock_monitoring_role NOLOGIN;", "CREATE ROLE lock_admin_role NOLOGIN;",
            "GRANT lock_monitoring_role TO lock_admin_role;",
        ])
        let sql = plan.statementsForDBA.split(separator: "\n")
        #expect(sql.filter { !$0.hasPrefix("--") }.count == 3, "only the statements are not comments: \(plan.statementsForDBA)")
        #expect(plan.statementsForDBA.contains("-- role lock_writer_role: already there"))
        #expect(plan.statementsForDBA.contains("-- role lock_admin_role: missing, and owner has neither SUPERUSER nor CREATEROLE"))
    }

    @Test func createRoleMayCreateAndThenGrantWhatItCreated() {
        for version in [150010, 180006] {
            let plan = VaultRoles.plan(Self.facts { $0.serverVersionNum = version; $0.hasCreateRole = true; $0.existingRoles = []; $0.existingMemberships = [] })
            #expect(!plan.isBlocked, "\(version)")
            #expect(plan.items.allSatisfy { $0.outcome == .toDo })
            #expect(plan.applied().reportLines() == [
                "role lock_monitoring_role: created", "role lock_admin_role: created", "role lock_writer_role: created",
                "grant lock_monitoring_role to lock_admin_role: granted",
            ])
        }
    }

    /// PostgreSQL 16 changed it: CREATEROLE grants only roles one holds ADMIN OPTION on (which
    /// the creator of a role gets); before, CREATEROLE could grant any non-superuser role.
    @Test func grantingAnExistingRoleNeedsAdminOptionFromPostgreSQL16() throws {
        let noMembership: (inout VaultRoleFacts) -> Void = { $0.hasCreateRole = true; $0.existingMemberships = [] }
        #expect(!VaultRoles.plan(Self.facts { noMembership(&$0); $0.serverVersionNum = 150010 }).isBlocked)
        let sixteen = VaultRoles.plan(Self.facts { noMembership(&$0); $0.serverVersionNum = 160000 })
        #expect(sixteen.isBlocked)
        #expect(sixteen.missingStatements == ["GRANT lock_monitoring_role TO lock_admin_role;"])
        let item = try #require(sixteen.items.last)
        #expect(item.outcome == .notPermitted("owner has CREATEROLE but no ADMIN OPTION on lock_monitoring_role, which it did not create (PostgreSQL 16 and newer require it)"))
        #expect(!VaultRoles.plan(Self.facts { noMembership(&$0); $0.serverVersionNum = 180006; $0.adminOptionOn = [VaultRoles.reader] }).isBlocked)
        #expect(!VaultRoles.plan(Self.facts { noMembership(&$0); $0.hasCreateRole = false; $0.isSuperuser = true }).isBlocked)
        #expect(VaultRoles.plan(Self.facts { noMembership(&$0); $0.hasCreateRole = false; $0.serverVersionNum = 150010 }).isBlocked,
                "without CREATEROLE or ADMIN OPTION not even 15 lets it grant")
    }

    @Test func statementsQuoteIdentifiersThatNeedIt() {
        #expect(VaultRoles.Requirement.role("lock_writer_role").statement == "CREATE ROLE lock_writer_role NOLOGIN;")
        #expect(VaultRoles.Requirement.role("Odd \"Name\"").statement == "CREATE ROLE \"Odd \"\"Name\"\"\" NOLOGIN;")
        #expect(VaultRoles.Requirement.membership(.init(role: "a-b", member: "c")).statement == "GRANT \"a-b\" TO c;")
    }

    @Test func aDryRunSaysWhatItWouldDo() {
        let plan = VaultRoles.plan(Self.facts { $0.isSuperuser = true; $0.existingRoles = [VaultRoles.reader]; $0.existingMemberships = [] })
        #expect(plan.reportLines(dryRun: true) == [
            "role lock_monitoring_role: already there", "role lock_admin_role: would create", "role lock_writer_role: would create",
            "grant lock_monitoring_role to lock_admin_role: would grant",
        ])
    }
}
