// LockvaultDaemon: see the module's other files.
