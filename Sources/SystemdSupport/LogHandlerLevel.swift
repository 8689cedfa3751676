public import Logging
import Synchronization

/// What lockvault's log handlers (``JSONLogHandler``, ``JournalLogHandler``) share: metadata by
/// key, the event's metadata over the logger's, and a level read through a ``LogLevelSetting``
/// so a reload can change every logger's level.
public protocol SharedLevelLogHandler: LogHandler {
    var levelSetting: LogLevelSetting { get set }
}

extension SharedLevelLogHandler {
    public var logLevel: Logger.Level {
        get { levelSetting.value }
        set { levelSetting = LogLevelSetting(newValue) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The logger's metadata with an event's own on top (the event's value wins).
    func metadata(with event: Logger.Metadata?) -> Logger.Metadata {
        metadata.merging(event ?? [:]) { _, new in new }
    }
}

/// A log level shared by handlers: swift-log bootstraps once per process, so this is how a
/// reload changes the level of loggers that already exist.
public final class LogLevelSetting: Sendable {
    private let storage: Mutex<Logger.Level>

    public init(_ level: Logger.Level) { storage = Mutex(level) }

    public var value: Logger.Level {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
