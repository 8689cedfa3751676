import Foundation
public import LockvaultEngine

extension LockvaultConfig {
    /// The engine's view of this configuration: the sections' own types, passed whole.
    public var monitorConfiguration: MonitorConfiguration {
        monitorConfiguration(environment: ProcessInfo.processInfo.environment)
    }

    /// The spool: `vault.spool_directory`, else `$STATE_DIRECTORY/spool` (the first of
    /// systemd's StateDirectory= paths), else none.
    public func spoolDirectory(environment: [String: String]) -> String? {
        if let spoolDirectory, !spoolDirectory.isEmpty { return spoolDirectory }
        guard let state = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !state.isEmpty else { return nil }
        return "\(state)/spool"
    }

    func monitorConfiguration(environment: [String: String]) -> MonitorConfiguration {
        var configuration = MonitorConfiguration(
            targetDSN: targetDSN, vaultDSN: vaultDSN, clusterName: clusterName, snapshot: snapshot, severity: severity,
            session: session, serverLogPath: serverLogPath, serverLogFormat: serverLogFormat,
            maxBufferedCycles: maxBufferedCycles, resolve: resolve, decidedBy: "daemon@\(ProcessInfo.processInfo.hostName)")
        configuration.spoolDirectory = spoolDirectory(environment: environment)
        configuration.spoolMaxBytes = spoolMaxMB << 20
        return configuration
    }

    public var interval: Duration { .milliseconds(Int64((intervalSeconds * 1000).rounded())) }
}
