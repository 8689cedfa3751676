import LockvaultEngine

/// Vaults as older lockvaults left them, for the upgrade tests.
enum OlderVaults {
    /// Numbered migrations that only add columns. A test that builds an older vault applies
    /// today's repeatable set (the functions and views of that time are not kept), whose
    /// statements name these columns: they come along, whatever the starting point.
    static let columnsOnly: Set<String> = ["031_block_kinds.sql", "033_short_waits.sql"]

    /// The migrations of a vault built before `version` (e.g. "030"): the numbered ones before
    /// it, the column-only ones, and today's repeatable set.
    static func before(_ version: String) -> [Migration] {
        Migration.embedded.filter { $0.kind == .repeatable || $0.name < version || columnsOnly.contains($0.name) }
    }
}
