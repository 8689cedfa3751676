// PostgresClient: see the module's other files.
