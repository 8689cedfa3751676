import ArgumentParser
import LockvaultEngine

/// The `lockvault` command line: the daemon and the verbs a DBA runs by hand.
@main
struct Lockvault: AsyncParsableCommand {
    static let version = LockvaultVersion.current

    static let configuration = CommandConfiguration(
        commandName: "lockvault",
        abstract: "Watch a PostgreSQL cluster's locks, record them as a Data Vault history, and say who blocks whom.",
        discussion: """
            Connection strings are libpq's: a conninfo (`host=… dbname=…`), a URI, or `service=name`; PG* \
            environment variables, ~/.pgpass and service files work as in psql.
            """,
        version: version,
        subcommands: [RunCommand.self, SampleCommand.self, BlockingCommand.self, EpisodesCommand.self, EpisodeCommand.self, ResolveCommand.self, MigrateCommand.self, CheckConfigCommand.self, StatusCommand.self, PingCommand.self, DoctorCommand.self, ReloadCommand.self]
    )
}
