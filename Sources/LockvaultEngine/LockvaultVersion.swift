/// This lockvault's version: `lockvault --version`, and what each daemon records with its cycle
/// summary (monitor_cycle_s.daemon_version), so a fleet's versions show in fleet_dashboard.
public enum LockvaultVersion {
    public static let current = "0.9.0"
}
