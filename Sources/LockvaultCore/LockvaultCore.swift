// LockvaultCore: see the module's other files.
