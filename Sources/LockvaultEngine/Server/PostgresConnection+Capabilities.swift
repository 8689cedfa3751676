public import LockvaultCore
public import PostgresClient

extension PostgresConnection {
    /// What the server on the other end can do (``ServerCapabilities``), from the
    /// `server_version_num` libpq read once, when the connection started: no round trip. Every
    /// version-dependent site of the engine asks this rather than comparing
    /// ``PostgresConnection/serverVersion`` itself.
    public var capabilities: ServerCapabilities { ServerCapabilities(serverVersionNum: serverVersion) }
}
