/// The vault's roles, and what `lockvault migrate` does about them before it touches the schema.
///
/// Roles are cluster-wide, and creating or granting them is not something every database owner
/// may do: creating needs SUPERUSER or CREATEROLE, and since PostgreSQL 16 granting one role to
/// another needs ADMIN OPTION on the granted role (CREATEROLE alone only covers roles its holder
/// created itself). So the roles are their own step, decided here from what the catalog says
/// (``VaultRoleFacts``) and applied by the engine — never half: when anything missing may not be
/// done by the migrating role, nothing is done, and the DBA gets the statements to run instead.
public enum VaultRoles {
    /// Reads the history and dashboards.
    public static let reader = "lock_monitoring_role"
    /// Reads (through ``reader``) and may resolve.
    public static let admin = "lock_admin_role"
    /// The daemon's: writes the history.
    public static let writer = "lock_writer_role"

    /// Every role, in the order they are created.
    public static let all = [reader, admin, writer]
    /// `admin` is a member of `reader`: it reads everything the reader reads.
    public static let memberships = [Membership(role: reader, member: admin)]

    /// `member` is a member of `role` (`GRANT role TO member`).
    public struct Membership: Sendable, Hashable {
        public let role: String
        public let member: String

        public init(role: String, member: String) {
            self.role = role
            self.member = member
        }
    }

    /// One thing the step makes sure of.
    public enum Requirement: Sendable, Hashable, CustomStringConvertible {
        case role(String)
        case membership(Membership)

        /// The statement that makes it so: parameter-free, identifiers quoted where needed, so a
        /// DBA can paste it into psql.
        public var statement: String {
            switch self {
            case .role(let name):
                return "CREATE ROLE \(Diagnosis.quoteIdent(name)) NOLOGIN;"
            case .membership(let m):
                return "GRANT \(Diagnosis.quoteIdent(m.role)) TO \(Diagnosis.quoteIdent(m.member));"
            }
        }

        /// `role lock_writer_role`, `grant lock_monitoring_role to lock_admin_role`.
        public var description: String {
            switch self {
            case .role(let name): return "role \(name)"
            case .membership(let m): return "grant \(m.role) to \(m.member)"
            }
        }
    }

    /// What the step is about, in the order it is applied.
    public static let requirements: [Requirement] = all.map(Requirement.role) + memberships.map(Requirement.membership)

    /// Decides, for each requirement, whether it is there, can be done by the migrating role, or
    /// not. No I/O: the engine reads the facts and applies the plan.
    public static func plan(_ facts: VaultRoleFacts) -> VaultRolePlan {
        var items: [VaultRolePlan.Item] = []
        for requirement in requirements {
            switch requirement {
            case .role(let name):
                if facts.existingRoles.contains(name) {
                    items.append(.init(requirement, .alreadyThere))
                } else if facts.isSuperuser || facts.hasCreateRole {
                    items.append(.init(requirement, .toDo))
                } else {
                    items.append(.init(requirement, .notPermitted("\(facts.currentUser) has neither SUPERUSER nor CREATEROLE")))
                }
            case .membership(let m):
                if facts.existingMemberships.contains(m) {
                    items.append(.init(requirement, .alreadyThere))
                } else if let reason = grantRefusal(of: m.role, facts) {
                    items.append(.init(requirement, .notPermitted(reason)))
                } else {
                    items.append(.init(requirement, .toDo))
                }
            }
        }
        return VaultRolePlan(items: items, currentUser: facts.currentUser)
    }

    /// Why the migrating role may not `GRANT role TO …`; nil when it may.
    static func grantRefusal(of role: String, _ facts: VaultRoleFacts) -> String? {
        if facts.isSuperuser || facts.adminOptionOn.contains(role) { return nil }
        let createdNow = !facts.existingRoles.contains(role)
        let needsAdminOption = ServerCapabilities(serverVersionNum: facts.serverVersionNum).has(.createRoleNeedsAdminOption)
        if facts.hasCreateRole && (createdNow || !needsAdminOption) { return nil }
        if facts.hasCreateRole {
            return "\(facts.currentUser) has CREATEROLE but no ADMIN OPTION on \(role), which it did not create (PostgreSQL 16 and newer require it)"
        }
        return "\(facts.currentUser) has neither SUPERUSER, CREATEROLE nor ADMIN OPTION on \(role)"
    }
}

/// What the catalog says about the vault's roles and the migrating role (read by the engine).
public struct VaultRoleFacts: Sendable, Equatable {
    public var serverVersionNum: Int
    public var currentUser: String
    public var isSuperuser: Bool
    public var hasCreateRole: Bool
    /// Which of ``VaultRoles/all`` exist.
    public var existingRoles: Set<String>
    /// Which of ``VaultRoles/memberships`` exist (directly: `pg_auth_members`).
    public var existingMemberships: Set<VaultRoles.Membership>
    /// Which of ``VaultRoles/all`` the migrating role holds ADMIN OPTION on.
    public var adminOptionOn: Set<String>

    public init(serverVersionNum: Int, currentUser: String, isSuperuser: Bool, hasCreateRole: Bool,
                existingRoles: Set<String>, existingMemberships: Set<VaultRoles.Membership>, adminOptionOn: Set<String>) {
        self.serverVersionNum = serverVersionNum
        self.currentUser = currentUser
        self.isSuperuser = isSuperuser
        self.hasCreateRole = hasCreateRole
        self.existingRoles = existingRoles
        self.existingMemberships = existingMemberships
        self.adminOptionOn = adminOptionOn
    }
}

/// The roles step: one item per requirement, with what is (or would be) done about it.
public struct VaultRolePlan: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case alreadyThere
        /// Missing, and the migrating role may do it.
        case toDo
        /// Missing, and the migrating role may not do it (why).
        case notPermitted(String)
        /// Done by this run.
        case done
    }

    public struct Item: Sendable, Equatable {
        public let requirement: VaultRoles.Requirement
        public var outcome: Outcome

        public init(_ requirement: VaultRoles.Requirement, _ outcome: Outcome) {
            self.requirement = requirement
            self.outcome = outcome
        }
    }

    public var items: [Item]
    public let currentUser: String

    public init(items: [Item], currentUser: String) {
        self.items = items
        self.currentUser = currentUser
    }

    /// True when something missing may not be done by the migrating role: then nothing is done.
    public var isBlocked: Bool { items.contains { if case .notPermitted = $0.outcome { true } else { false } } }

    /// What is still missing, as statements, in order (for the DBA when blocked; run by the step otherwise).
    public var missingStatements: [String] {
        items.filter { $0.outcome != .alreadyThere && $0.outcome != .done }.map(\.requirement.statement)
    }

    /// Every item marked as done (after the step applied the plan).
    public func applied() -> VaultRolePlan {
        var copy = self
        for i in copy.items.indices where copy.items[i].outcome == .toDo { copy.items[i].outcome = .done }
        return copy
    }

    /// One line per item: `role lock_writer_role: created`, `grant lock_monitoring_role to
    /// lock_admin_role: already there`; a dry run says `would create` / `would grant`.
    public func reportLines(dryRun: Bool = false) -> [String] {
        items.map { item in
            let isRole = if case .role = item.requirement { true } else { false }
            let state: String
            switch item.outcome {
            case .alreadyThere: state = "already there"
            case .done: state = isRole ? "created" : "granted"
            case .toDo: state = dryRun ? (isRole ? "would create" : "would grant") : "to do"
            case .notPermitted(let why): state = "missing, and \(why)"
            }
            return "\(item.requirement): \(state)"
        }
    }

    /// When blocked: SQL a DBA can paste — the situation as comments, then the statements.
    public var statementsForDBA: String {
        var lines = reportLines().map { "-- \($0)" }
        lines.append("-- lockvault migrate changed nothing. Run these statements as a role that may (a superuser; or a role with CREATEROLE,")
        lines.append("-- which on PostgreSQL 16+ also needs ADMIN OPTION on roles it did not create), then run lockvault migrate again:")
        lines += missingStatements
        return lines.joined(separator: "\n")
    }
}
