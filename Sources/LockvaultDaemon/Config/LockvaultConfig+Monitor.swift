import Foundation
public import LockvaultEngine

extension LockvaultConfig {
    /// The Monitor's sections as the daemon runs them: the spool where the service's
    /// environment puts it (``spoolDirectory(environment:)``).
    public var monitorSettings: MonitorSettings {
        monitorSettings(environment: ProcessInfo.processInfo.environment)
    }

    /// The spool: `vault.spool_directory`, else `$STATE_DIRECTORY/spool` (the first of
    /// systemd's StateDirectory= paths), else none.
    public func spoolDirectory(environment: [String: String]) -> String? {
        if let spoolDirectory = monitor.vault.spoolDirectory, !spoolDirectory.isEmpty { return spoolDirectory }
        guard let state = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !state.isEmpty else { return nil }
        return "\(state)/spool"
    }

    func monitorSettings(environment: [String: String]) -> MonitorSettings {
        var settings = monitor
        settings.vault.spoolDirectory = spoolDirectory(environment: environment)
        return settings
    }

    public var interval: Duration { .milliseconds(Int64((intervalSeconds * 1000).rounded())) }
}
