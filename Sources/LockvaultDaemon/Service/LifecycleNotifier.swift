/// How the daemon tells its supervisor what it is doing. Under systemd this is `sd_notify`
/// (READY/STATUS/WATCHDOG/RELOADING/STOPPING); elsewhere it is silent.
public protocol LifecycleNotifier: Sendable {
    func ready()
    func status(_ line: String)
    func watchdog()
    func reloading()
    func stopping()
    /// Half of this is the ping period; nil when the supervisor wants no pings.
    var watchdogInterval: Duration? { get }
}
