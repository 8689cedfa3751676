public import LockvaultCore
public import PostgresClient

/// The roles step of `lockvault migrate`, run before any numbered migration: reads what the
/// catalog says about the vault's roles (``VaultRoleFacts``), lets ``VaultRoles/plan(_:)``
/// decide, and creates what is missing — all of it in one transaction, or none of it.
///
/// The numbered migrations only grant table privileges to the roles, which the schema's owner
/// may always do; so an owner without CREATEROLE migrates once the roles exist.
public enum VaultRoleStep {
    /// What the catalog says, for the connection's current role.
    public static func facts(on conn: PostgresConnection) throws -> VaultRoleFacts {
        let names = VaultRoles.all
        let me = try conn.query("SELECT current_user::text AS me, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        let existing = Set(try conn.query("SELECT rolname::text AS r FROM pg_roles WHERE rolname = ANY($1::text[])", [names]).map {
            try $0.decode("r", as: String.self)
        })
        let memberships = Set(try conn.query("""
            SELECT g.rolname::text AS role, m.rolname::text AS member
            FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
            WHERE g.rolname = ANY($1::text[]) AND m.rolname = ANY($1::text[])
            """, [names]).map { VaultRoles.Membership(role: try $0.decode("role"), member: try $0.decode("member")) })
        let admin = Set(try conn.query("""
            SELECT rolname::text AS r FROM pg_roles WHERE rolname = ANY($1::text[]) AND pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION')
            """, [names]).map { try $0.decode("r", as: String.self) })
        return VaultRoleFacts(
            serverVersionNum: conn.serverVersion,
            currentUser: try me.first?.decode("me", as: String.self) ?? conn.user,
            isSuperuser: try me.first?.decode("rolsuper", as: Bool.self) ?? false,
            hasCreateRole: try me.first?.decode("rolcreaterole", as: Bool.self) ?? false,
            existingRoles: existing, existingMemberships: memberships, adminOptionOn: admin)
    }

    /// The plan, without changing anything (`migrate --dry-run`).
    public static func plan(on conn: PostgresConnection) throws -> VaultRolePlan {
        VaultRoles.plan(try facts(on: conn))
    }

    /// Creates what is missing, in one transaction, and returns what was done. Throws
    /// ``MigrationError/Code/rolesNotPermitted`` (carrying the plan) — having changed nothing —
    /// when something missing may not be done by this role, also when the server refuses a
    /// statement the plan expected to work.
    public static func apply(on conn: PostgresConnection) throws -> VaultRolePlan {
        var attempt = 0
        while true {
            attempt += 1
            let plan = try plan(on: conn)
            if plan.isBlocked { throw refusal(plan) }
            let todo = plan.items.filter { $0.outcome == .toDo }
            if todo.isEmpty { return plan }
            do {
                try conn.transaction { tx in
                    for item in todo { try tx.execute(item.requirement.statement) }
                }
                return plan.applied()
            } catch let error as PostgresError where error.sqlState == SQLState.insufficientPrivilege {
                // The catalog said it may; the server says no. Nothing was kept.
                var refused = plan
                for i in refused.items.indices where refused.items[i].outcome == .toDo {
                    refused.items[i].outcome = .notPermitted("the server refused: \(error.message)")
                }
                throw refusal(refused)
            } catch let error as PostgresError where attempt == 1 && (error.sqlState == SQLState.duplicateObject || error.sqlState == SQLState.uniqueViolation) {
                // Another vault database on this cluster created a role at the same moment (roles are
                // cluster-wide; the migrate lock is per database): look again.
                continue
            }
        }
    }

    static func reasons(_ plan: VaultRolePlan) -> String {
        var seen: [String] = []
        for item in plan.items { if case .notPermitted(let why) = item.outcome, !seen.contains(why) { seen.append(why) } }
        return seen.joined(separator: "; ")
    }

    public static func refusal(_ plan: VaultRolePlan) -> MigrationError {
        MigrationError(code: .rolesNotPermitted, migration: "roles",
                       message: "the vault's roles are not all there and \(plan.currentUser) may not create them (\(reasons(plan))); nothing was changed",
                       roles: plan)
    }
}
