// LockvaultEngine: see the module's other files.
